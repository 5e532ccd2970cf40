/**
 * The parts of scripts/gpu-check.sh that run our code besides the benchmarks; each prints one JSON line:
 *   node -r @swc-node/register bench/gpu-check.ts adapters
 *     every Vulkan adapter Dawn offers (name, vendor, driver, software or not, limits)
 *   node -r @swc-node/register bench/gpu-check.ts pretrain-probe '<json PretrainProbeConfig>'
 *     a short inline pretrain then a probe of every decoder block at one noise level, on the webgpu
 *     backend (DDAE_GPU names the GPU; a software adapter is accepted: it is asked for by name)
 *   node -r @swc-node/register bench/gpu-check.ts summary <dir>
 *     the figures of docs/results.md from the JSON files the other steps wrote into <dir>
 * Bundled with esbuild by `scripts/gpu-check.sh pack` for a host without node_modules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decoderBlockNames, type ComputeResult, type GpuAdapter, type ProbeProtocol } from '@ddae/contracts';
import { gpuFromEnv, listAdapters, releaseBackend, runComputeTask, selectBackend } from '@ddae/compute';

export interface PretrainProbeConfig {
  /** UNet of the run (resolved config). */
  unet: { baseChannels: number; channelMults: number[]; blocksPerLevel: number; attentionResolutions: number[]; dropout: number; groups: number };
  steps: number;
  batch: number;
  /** First N images of the seeded training order. */
  trainSize: number;
  /** DDPM timestep of the probe. */
  timestep: number;
  probe: { trainSize: number; testSize: number; epochs: number };
  /** Where the checkpoints go (a fresh directory). */
  out: string;
  /** Data set root holding fashion-mnist/ (default: the data library's). */
  dataDir?: string;
}

async function pretrainProbe(cfg: PretrainProbeConfig): Promise<Record<string, unknown>> {
  const selected = await selectBackend('webgpu', { gpu: gpuFromEnv() });
  try {
    const dataset = { name: 'fashion-mnist' as const, ...(cfg.dataDir ? { dir: path.join(cfg.dataDir, 'fashion-mnist') } : {}) };
    const checkpointDir = path.join(cfg.out, 'run');
    const t0 = Date.now();
    const pretrained = await runComputeTask({
      kind: 'pretrain',
      runId: 'gpu-check',
      method: 'ddpm',
      unet: cfg.unet,
      dataset,
      trainSize: cfg.trainSize,
      steps: cfg.steps,
      batchSize: cfg.batch,
      learningRate: 2e-4,
      warmupSteps: Math.min(100, Math.floor(cfg.steps / 10)),
      gradClip: 1,
      emaDecayCap: 0.9999,
      checkpointEvery: cfg.steps,
      seed: 0,
      checkpointDir,
    });
    const pretrainWall = (Date.now() - t0) / 1000;
    // Progress on stderr: a step that runs out of time still says how far it got (logs.txt).
    process.stderr.write(`[pretrain-probe] pretrained ${cfg.steps} steps in ${pretrainWall.toFixed(1)} s\n`);
    if (pretrained.kind !== 'pretrain') throw new Error(`expected a pretrain result, got ${pretrained.kind}`);
    const protocol: ProbeProtocol = {
      pooling: 'gap',
      noise: 'fixed',
      noiseSeed: 0,
      probe: 'fast',
      epochs: cfg.probe.epochs,
      batchSize: 128,
      learningRate: 1e-3,
      standardize: true,
      trainSize: cfg.probe.trainSize,
      testSize: cfg.probe.testSize,
      probeSeed: 0,
    };
    const layers = decoderBlockNames({ ...cfg.unet, imageSize: 32, imageChannels: 1 });
    const t1 = Date.now();
    const probed: ComputeResult = await runComputeTask({
      kind: 'probe',
      probeTaskId: 'gpu-check',
      method: 'ddpm',
      unet: cfg.unet,
      dataset,
      checkpointPath: pretrained.finalCheckpoint.path,
      noiseLevel: cfg.timestep,
      layers,
      protocol,
    });
    const probeWall = (Date.now() - t1) / 1000;
    process.stderr.write(`[pretrain-probe] probed ${layers.length} layers in ${probeWall.toFixed(1)} s\n`);
    if (probed.kind !== 'probe') throw new Error(`expected a probe result, got ${probed.kind}`);
    const best = [...probed.layers].sort((a, b) => b.accuracy - a.accuracy)[0];
    return {
      backend: selected.backend,
      adapter: selected.gpu ? adapterSummary(selected.gpu) : null,
      config: cfg,
      pretrain: {
        steps: pretrained.steps,
        seconds: pretrained.seconds,
        wallSeconds: pretrainWall,
        imgPerSec: (pretrained.steps * cfg.batch) / pretrained.seconds,
        finalLoss: pretrained.finalCheckpoint.loss ?? null,
        parameters: pretrained.parameters ?? null,
        memory: pretrained.device?.memory ?? null,
      },
      probe: {
        timestep: cfg.timestep,
        seconds: probed.seconds,
        wallSeconds: probeWall,
        featureSeconds: probed.featureSeconds ?? null,
        probeSeconds: probed.probeSeconds ?? null,
        best: best ? { layer: best.layer, accuracy: best.accuracy } : null,
        layers: probed.layers,
        memory: probed.device?.memory ?? null,
      },
    };
  } finally {
    await releaseBackend();
  }
}

function adapterSummary(a: GpuAdapter): Record<string, unknown> {
  return { name: a.name, vendor: a.vendor, architecture: a.architecture, driver: a.description, fallback: a.fallback, limits: a.limits };
}

/**
 * fp32 peak (non-tensor-core FMA throughput, 2 FLOPs per FMA) of the GPUs we may be lent, from
 * NVIDIA's datasheets; matched on the adapter's name. Null for any other (the summary says so).
 */
const FP32_PEAK_TFLOPS: [RegExp, number, string][] = [
  [/H200 NVL/i, 60, 'NVIDIA H200 NVL datasheet: 60 TFLOPS fp32'],
  [/H200/i, 67, 'NVIDIA H200 SXM datasheet: 67 TFLOPS fp32 (the NVL card: 60)'],
  [/H100.*PCIe/i, 51, 'NVIDIA H100 PCIe datasheet: 51 TFLOPS fp32'],
  [/H100/i, 67, 'NVIDIA H100 SXM datasheet: 67 TFLOPS fp32'],
  [/A100/i, 19.5, 'NVIDIA A100 datasheet: 19.5 TFLOPS fp32'],
];

interface BenchJson {
  task: string;
  model: { batch: number; baseChannels: number; params: number };
  ours: { backend: string; imgPerSec: number; gflops: number; gpu?: { name: string; fallback: boolean } };
  torch?: { imgPerSec: number; gflops: number; device: string; version: string };
  reference?: { device: string | null; gpu?: string | null; reason?: string };
  slowdown?: number;
}

interface ProfileJson {
  unet: string;
  batch: number;
  kernels: number;
  kernelsTimed: number;
  kernelMs: number;
  wallMs: number;
  rows: { kernel: string; calls: number; ms: number; share: number | null }[];
  note: string;
  /** Dispatches per step and the unprofiled steps' host time (absent from profiles before 2026-12-01). */
  dispatches?: number | null;
  hostMsMedian?: number | null;
  hostCpuMsMedian?: number | null;
  steps?: { hostMs: number; hostCpuMs: number | null; wallMs: number; dispatches: number }[];
}

/** One training step under the profiler: GPU time in kernels against wall time, and the top kernels. */
function profileSummary(p: ProfileJson | undefined): Record<string, unknown> | null {
  if (!p) return null;
  return {
    unet: p.unet,
    batch: p.batch,
    kernelCalls: p.kernels,
    kernelsTimed: p.kernelsTimed,
    kernelMs: p.kernelMs,
    wallMs: p.wallMs,
    // The share of the step's wall time the GPU spent inside kernels (the rest: dispatch, sync, host).
    kernelShareOfWall: p.wallMs > 0 ? Number((p.kernelMs / p.wallMs).toFixed(3)) : null,
    dispatches: p.dispatches ?? null,
    // Unprofiled steps: time to record and submit every dispatch (the host's share), and the whole step.
    hostMsMedian: p.hostMsMedian ?? null,
    hostCpuMsMedian: p.hostCpuMsMedian ?? null,
    steps: p.steps ?? null,
    top: p.rows.slice(0, 12),
    note: p.note,
  };
}

/** The figures docs/results.md records, from the files of one gpu-check run. */
export function summarize(files: Record<string, unknown>): Record<string, unknown> {
  const bench = (name: string): BenchJson | undefined => files[name] as BenchJson | undefined;
  const gpuName = bench('bench-train.json')?.ours.gpu?.name ?? bench('bench-features.json')?.ours.gpu?.name ?? null;
  const peak = gpuName ? FP32_PEAK_TFLOPS.find(([re]) => re.test(gpuName)) : undefined;
  const side = (b: BenchJson | undefined, goal: number) =>
    b && {
      model: { baseChannels: b.model.baseChannels, batch: b.model.batch, params: b.model.params },
      ours: { imgPerSec: b.ours.imgPerSec, gflops: b.ours.gflops, fractionOfFp32Peak: peak ? b.ours.gflops / (peak[1] * 1e3) : null },
      reference: b.torch
        ? { device: b.torch.device, gpu: b.reference?.gpu ?? null, torch: b.torch.version, imgPerSec: b.torch.imgPerSec, gflops: b.torch.gflops, fractionOfFp32Peak: peak && b.torch.device === 'cuda' ? b.torch.gflops / (peak[1] * 1e3) : null }
        : { device: null, reason: b.reference?.reason ?? 'not run' },
      // torch img/s over ours: how many times slower we are; the goal in brackets.
      slowdown: b.slowdown ?? null,
      goal: `within ${goal}x of PyTorch CUDA fp32`,
      metGoal: b.slowdown !== undefined && b.torch?.device === 'cuda' ? b.slowdown <= goal : null,
    };
  return {
    gpu: gpuName,
    software: bench('bench-train.json')?.ours.gpu?.fallback ?? null,
    fp32PeakTflops: peak ? peak[1] : null,
    fp32PeakSource: peak ? peak[2] : 'no datasheet figure for this adapter',
    train: side(bench('bench-train.json'), 3) ?? null,
    features: side(bench('bench-features.json'), 2) ?? null,
    profile: profileSummary(files['profile.json'] as ProfileJson | undefined),
    pretrainProbe: files['pretrain-probe.json'] ?? null,
    errors: Object.fromEntries(Object.entries(files).filter(([f]) => f.endsWith('.error')).map(([f, text]) => [f, String(text).slice(0, 2000)])),
  };
}

async function main(): Promise<void> {
  const [cmd, arg] = process.argv.slice(2);
  let out: unknown;
  if (cmd === 'adapters') {
    out = { adapters: await listAdapters() };
  } else if (cmd === 'pretrain-probe') {
    out = await pretrainProbe(JSON.parse(arg ?? '') as PretrainProbeConfig);
  } else if (cmd === 'summary') {
    const dir = arg ?? '.';
    const files: Record<string, unknown> = {};
    for (const f of fs.readdirSync(dir)) {
      if (f.endsWith('.json') && f !== 'summary.json') {
        try {
          files[f] = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
        } catch {
          files[`${f}.error`] = 'not JSON';
        }
      } else if (f.endsWith('.error')) files[f] = fs.readFileSync(path.join(dir, f), 'utf8');
    }
    out = summarize(files);
  } else {
    throw new Error('usage: gpu-check adapters | pretrain-probe <json> | summary <dir>');
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
