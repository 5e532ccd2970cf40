import type { Prisma, PrismaClient } from '@ddae/db';
import { BaselineRepository, ProbeRepository, ProgressProbeRepository, RunGenerationQualityRepository, RunRepository, RunSampleRepository, SweepRepository, TrainLossRepository } from '@ddae/db';
import { createHash } from 'node:crypto';
import { decoderBlockNames, protocolAtBudget, protocolKey, resolveUNet, sweepSpecSchema, type ProbeProtocol } from '@ddae/contracts';
import { imageGridPng } from '@ddae/render';

export interface FinishedSweepOptions {
  name?: string;
  /** Seeds of the trained model. Default [0, 1]. */
  seeds?: number[];
  /** DDPM timesteps probed. Default [4, 8, 25]. */
  timesteps?: number[];
  /** The untrained control scores above the trained model (the page must still not crown it). Default false. */
  untrainedWins?: boolean;
  /** Accuracy of the raw-pixel baseline. Default 0.826. */
  pixels?: number;
  /** Fine-tune each trained run's best cell (out_2 at the first level, all labels) to this accuracy (+0.002 per seed). Default: no fine-tuning. */
  finetuned?: number;
  /** The backend and device every result is recorded as computed on. Default native on `cpu`. */
  computedOn?: { backend: string; device: string };
  /**
   * Label budgets below all (ascending, e.g. [20, 200]): every cell and the pixel baseline also at
   * each, a budget's accuracy lower the fewer its labels. Default none (all only).
   */
  labels?: number[];
}

export interface FinishedSweep {
  sweepId: string;
  /** Runs by key (`ddpm-small-s0`, ..., `ddpm-small-untrained-s0`). */
  runs: Record<string, string>;
  /** The accuracy each (run key, layer, noise level) cell was given (at `labels`; default all). */
  accuracy(run: string, layer: string, noiseLevel: number, labels?: number): number;
}


/**
 * A finished sweep written through the repositories the workers use (no queue, no compute): a DDPM
 * UNet `small` over `seeds`, its untrained control and the raw-pixel baseline, every probe cell, the
 * training-loss curve, probing during pretraining and a sample grid per trained run. Accuracies are
 * a deterministic function of (run, layer, noise level), single-peaked in both, as real ones are.
 */
export async function seedFinishedSweep(prisma: PrismaClient, options: FinishedSweepOptions = {}): Promise<FinishedSweep> {
  const seeds = options.seeds ?? [0, 1];
  const WORKER = { workerId: 'fixture-worker', backend: options.computedOn?.backend ?? 'native' };
  const device = options.computedOn?.device ?? 'cpu';
  const levels = options.timesteps ?? [4, 8, 25];
  // The rows a planned sweep is made of (as @ddae/sweeps plans them; written out here, which a
  // testing library may not import): runs per seed plus the untrained control, one probe task per
  // (run, level), the pixel baseline under the same protocol.
  const spec = sweepSpecSchema.parse({
    name: options.name ?? 'fixture-sweep',
    dataset: 'fashion-mnist',
    models: [{ method: 'ddpm', unet: 'small' }],
    pretrain: { steps: 400, batchSize: 64, learningRate: 1e-3, checkpointEvery: 200, seeds, lossEvery: 50 },
    probe: { layers: 'all', timesteps: levels, pooling: 'avg4', trainSize: 4000, testSize: 2000, epochs: 10, ...(options.labels ? { labels: [...options.labels, 'all'] } : {}) },
    baselines: ['pixels', 'untrained'],
  });
  const unet = resolveUNet('small');
  const layers = decoderBlockNames({ ...unet, imageSize: 32, imageChannels: 1 });
  const protocol: ProbeProtocol = { pooling: 'avg4', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 10, batchSize: 128, learningRate: 1e-3, standardize: true, trainSize: 4000, testSize: 2000, probeSeed: 0 };
  const progressProtocol: ProbeProtocol = { ...protocol, epochs: 5, trainSize: 2000, testSize: 1000 };
  const key = protocolKey(protocol);
  const ftProtocol: ProbeProtocol = { ...protocol, probe: 'finetune', epochs: 5, learningRate: 1e-4, augment: true };
  const ftKey = protocolKey(ftProtocol);
  const hyper = { steps: 400, batchSize: 64, learningRate: 1e-3, warmupSteps: 40, gradClip: 1, emaDecayCap: 0.9999, checkpointEvery: 200, trainSize: null, lossEvery: 50, progressProbe: { every: 100, noiseLevels: [8], layers: ['out_2', 'out_4'], protocol: progressProtocol } };
  const runSpecs = [
    ...seeds.map((seed) => ({ key: `ddpm-small-s${seed}`, untrained: false, seed, hyper, steps: 400 })),
    { key: `ddpm-small-untrained-s${seeds[0]}`, untrained: true, seed: seeds[0], hyper: { ...hyper, steps: 0, warmupSteps: 0, checkpointEvery: 1, progressProbe: undefined }, steps: 0 },
  ];
  const json = (x: unknown) => JSON.parse(JSON.stringify(x)) as Prisma.InputJsonValue;
  const sweeps = new SweepRepository(prisma);
  const created = await sweeps.create({
    name: spec.name,
    priority: spec.priority,
    dataset: spec.dataset,
    spec: json(spec),
    specHash: createHash('sha256').update(JSON.stringify(spec)).digest('hex'),
    runs: runSpecs.map((r) => ({ key: r.key, modelName: 'ddpm-small', untrained: r.untrained, method: 'ddpm', unet: json(unet), dataset: 'fashion-mnist', seed: r.seed, hyper: json(r.hyper), steps: r.steps })),
    probeTasks: [
      ...runSpecs.flatMap((r) => levels.map((noiseLevel) => ({ runKey: r.key, noiseLevel, layers, protocol: json(protocol), protocolKey: key, ...(options.labels ? { labels: [...options.labels, 'all' as const] } : {}) }))),
      ...(options.finetuned === undefined ? [] : runSpecs.filter((r) => !r.untrained).map((r) => ({ runKey: r.key, noiseLevel: levels[0], layers: ['out_2'], protocol: json(ftProtocol), protocolKey: ftKey }))),
    ],
    baselines: [...(options.labels ?? []), 'all' as const].map((budget) => {
      const at = protocolAtBudget(protocol, budget);
      return { dataset: 'fashion-mnist', kind: 'pixels', protocol: json(at), protocolKey: protocolKey(at), ...(budget === 'all' ? {} : { labels: budget }) };
    }),
  });
  const sweepId = created.sweep.id;
  const runRows = await prisma.run.findMany({ where: { sweepId }, orderBy: { key: 'asc' } });
  const runs = Object.fromEntries(runRows.map((r) => [r.key, r.id]));

  /** Fewer labels, lower accuracy: 0.05 per decade below 10,000 labels (the untrained control loses more). */
  const budgetLoss = (labels: number | undefined, untrained: boolean): number => (labels === undefined ? 0 : (untrained ? 0.08 : 0.05) * Math.max(0, 4 - Math.log10(labels)));
  const accuracy = (run: string, layer: string, noiseLevel: number, labels?: number): number => {
    const row = runRows.find((r) => r.key === run);
    const depth = Number(/\d+/.exec(layer)?.[0] ?? 0);
    const peak = row?.untrained ? (options.untrainedWins ? 0.86 : 0.812) : 0.838;
    const seedShift = row?.untrained ? 0 : 0.002 * (row?.seed ?? 0);
    return Math.round((peak - 0.006 * Math.abs(depth - 2) - 0.003 * Math.abs(levels.indexOf(noiseLevel) - 0) + seedShift - budgetLoss(labels, row?.untrained ?? false)) * 1e4) / 1e4;
  };

  const runRepo = new RunRepository(prisma);
  const probes = new ProbeRepository(prisma);
  const losses = new TrainLossRepository(prisma);
  const samples = new RunSampleRepository(prisma);
  const progress = new ProgressProbeRepository(prisma);
  for (const run of runRows) {
    await runRepo.claim(run.id, { ...WORKER, device });
    const steps = run.untrained ? [0] : [200, 400];
    for (const step of steps) await runRepo.recordCheckpoint(run.id, { step, path: `runs/${run.id}/step-${String(step).padStart(8, '0')}`, sha256: 'f'.repeat(64), loss: 0.05 });
    await runRepo.setParameters(run.id, 387_000);
    if (!run.untrained) {
      await losses.record(run.id, Array.from({ length: 8 }, (_, i) => ({ step: 50 * (i + 1), loss: 0.03 + 0.25 * Math.exp(-(50 * (i + 1)) / 120) + 0.001 * run.seed })));
      const pp = (run.hyper as { progressProbe?: { protocol: ProbeProtocol } }).progressProbe;
      if (pp) {
        for (const step of [100, 200, 300, 400]) {
          const cells = ['out_2', 'out_4'].map((layer) => ({ layer, noiseLevel: 8, accuracy: accuracy(run.key, layer, 8) - 0.02 * (400 - step) / 300, featureDim: 1024 }));
          await progress.record(run.id, { step, cells }, { protocol: pp.protocol as unknown as Prisma.InputJsonValue, protocolKey: protocolKey(pp.protocol), ...WORKER, device });
        }
      }
      // A real PNG: 16 images of 28x28, a gradient per image.
      const images = new Float32Array(16 * 28 * 28).map((_, i) => Math.sin(i / 97) * 0.9);
      const grid = imageGridPng(images, 16, 28, 1, { scale: 2, pad: 2 });
      await samples.record(run.id, { step: 400, path: `runs/${run.id}/samples-step-00000400.png`, png: grid.png, n: 16, sampler: 'ddim', samplerSteps: 20, seed: 0, width: grid.width, height: grid.height, seconds: 3.2, ...WORKER, device });
    }
    await runRepo.complete(run.id, { step: steps[steps.length - 1], path: `runs/${run.id}/step-${String(steps[steps.length - 1]).padStart(8, '0')}`, sha256: 'f'.repeat(64), loss: 0.05 });
    const checkpoint = await runRepo.finalCheckpoint(run.id);
    if (!checkpoint) throw new Error('fixture: no final checkpoint');
    for (const task of await probes.openTasksOfRun(run.id)) {
      await probes.claim(task.id, WORKER);
      const context = { checkpointId: checkpoint.id, dataset: run.dataset, method: run.method, untrained: run.untrained, ...WORKER, device };
      if (task.protocolKey === ftKey) {
        await probes.complete(task, context, task.layers.map((layer) => ({ layer, accuracy: Math.round(((options.finetuned ?? 0) + 0.002 * run.seed) * 1e4) / 1e4, featureDim: 1024 })));
        continue;
      }
      const budgets = [...(options.labels ?? []), undefined];
      await probes.complete(task, context, budgets.flatMap((labels) => task.layers.map((layer) => ({ layer, ...(labels === undefined ? {} : { labels }), accuracy: accuracy(run.key, layer, task.noiseLevel, labels), featureDim: 1024 }))));
    }
  }
  const baselineRepo = new BaselineRepository(prisma);
  for (const id of created.pendingBaselineIds) {
    await baselineRepo.claim(id, { ...WORKER, device });
    const labels = (await baselineRepo.findById(id))?.labels ?? undefined;
    await baselineRepo.complete(id, { accuracy: Math.round(((options.pixels ?? 0.826) - budgetLoss(labels, true)) * 1e4) / 1e4, featureDim: 784, device });
  }
  await sweeps.refreshStatus(sweepId);
  return { sweepId, runs, accuracy };
}

/**
 * FID and KID of every run of a seeded sweep, as a worker stores them with pretrain.fid: a trained
 * run's at step 400 with FID `fid`, the untrained control's at step 0 with FID 310.5; the rest
 * (KID 0.031 ± 0.002, 2,000 DDIM samples against the 10,000 test images) the same for all.
 */
export async function seedGenerationQuality(prisma: PrismaClient, sweep: FinishedSweep, options: { fid: number; workerId: string }): Promise<void> {
  const generation = new RunGenerationQualityRepository(prisma);
  for (const [key, runId] of Object.entries(sweep.runs)) {
    await generation.record(runId, {
      step: key.includes('untrained') ? 0 : 400, extractor: 'ddae-fmnist-cnn-v1 penultimate, 128-d', extractorSha256: 'a'.repeat(64), fid: key.includes('untrained') ? 310.5 : options.fid,
      kidMean: 0.031, kidStd: 0.002, kidSubsets: 20, kidSubsetSize: 500, samples: 2000, reference: 'fashion-mnist test', referenceCount: 10_000, sampler: 'ddim', samplerSteps: 50,
      seed: 0, seconds: 12.5, backend: 'native', workerId: options.workerId,
    });
  }
}
