import { sweepSpecSchema } from '@ddae/contracts';
import { PlanError, canonicalJson, planSweep } from './plan';
import { validateSweepSpec } from './validate';

const spec = (over: Record<string, unknown> = {}) =>
  sweepSpecSchema.parse({
    name: 'plan',
    dataset: 'fashion-mnist',
    models: [
      { method: 'ddpm', unet: 'tiny' },
      { name: 'edm-small', method: 'edm', unet: 'small' },
    ],
    pretrain: { steps: 50, seeds: [0, 1, 2] },
    probe: { timesteps: [5, 25], sigmas: [0.06], trainSize: 1000 },
    ...over,
  });

describe('planSweep', () => {
  it('plans a DiT model: its run carries the DiT, `all` is every block, untrained control included', () => {
    const plan = planSweep(
      spec({
        models: [{ method: 'ddpm', unet: 'tiny' }, { method: 'ddpm', backbone: 'dit', dit: 'dit-tiny' }, { method: 'edm', backbone: 'dit', dit: { depth: 2, width: 32, heads: 2, patch: 2 } }],
        baselines: ['pixels', 'untrained'],
        pretrain: { steps: 50, progressProbe: { every: 10 } },
      }),
    );
    const run = plan.runs.find((r) => r.key === 'ddpm-dit-tiny-s0');
    expect(run).toMatchObject({ backbone: 'dit', dit: { depth: 4, width: 48, heads: 4, patch: 4, mlpRatio: 4 } });
    expect(run).not.toHaveProperty('unet');
    expect(plan.runs.find((r) => r.key === 'ddpm-tiny-s0')).toMatchObject({ backbone: 'unet', unet: { baseChannels: 8 } });
    expect(plan.runs.find((r) => r.key === 'ddpm-dit-tiny-untrained-s0')).toMatchObject({ backbone: 'dit', untrained: true, hyper: { steps: 0 } });
    expect(plan.probeTasks.find((t) => t.runKey === 'ddpm-dit-tiny-s0')?.layers).toEqual(['blk_1', 'blk_2', 'blk_3', 'blk_4']);
    expect(plan.probeTasks.find((t) => t.runKey === 'edm-dit-d2w32p2-s0')?.layers).toEqual(['blk_1', 'blk_2']);
    expect(run?.hyper.progressProbe?.layers).toEqual(['blk_1', 'blk_2', 'blk_3', 'blk_4']);
  });

  it('carries pretrain.samples to every run (false: no grid), and nothing without it (the worker default grid)', () => {
    for (const r of planSweep(spec({ pretrain: { steps: 50, samples: false } })).runs) expect(r.hyper.samples).toBe(false);
    for (const r of planSweep(spec({ pretrain: { steps: 50, samples: { n: 4, steps: 5 } } })).runs) expect(r.hyper.samples).toEqual({ n: 4, steps: 5, seed: 0 });
    for (const r of planSweep(spec()).runs) expect(r.hyper).not.toHaveProperty('samples');
  });

  it('asks every run, the untrained control too, for FID/KID when the spec has pretrain.fid, and none without it', () => {
    const plan = planSweep(spec({ baselines: ['untrained'], pretrain: { steps: 50, fid: { samples: 64, steps: 4 } } }));
    expect(plan.runs.length).toBeGreaterThan(2);
    for (const r of plan.runs) expect(r.hyper.fid).toEqual({ samples: 64, steps: 4, seed: 0 });
    expect(plan.runs.some((r) => r.untrained)).toBe(true);
    for (const r of planSweep(spec()).runs) expect(r.hyper).not.toHaveProperty('fid');
  });

  it('makes one run per (model, seed) and one probe task per (run, noise level)', () => {
    const plan = planSweep(spec());
    expect(plan.runs.map((r) => r.key)).toEqual(['ddpm-tiny-s0', 'ddpm-tiny-s1', 'ddpm-tiny-s2', 'edm-small-s0', 'edm-small-s1', 'edm-small-s2']);
    expect(plan.probeTasks.filter((t) => t.runKey.startsWith('ddpm')).map((t) => t.noiseLevel)).toEqual([5, 25, 5, 25, 5, 25]);
    expect(plan.probeTasks.filter((t) => t.runKey.startsWith('edm')).map((t) => t.noiseLevel)).toEqual([0.06, 0.06, 0.06]);
    // `all` means every decoder block of that run's UNet: 4 for tiny, 9 for small.
    expect(plan.counts).toEqual({ runs: 6, probeTasks: 9, probeCells: 6 * 4 + 3 * 9, baselines: 1, pretrainSteps: 300 });
  });

  it('plans label budgets: every task probes them all on its features, one baseline per budget, none named: all as before', () => {
    const plain = planSweep(spec());
    expect(plain.labels).toEqual(['all']);
    expect(plain.probeTasks[0]).not.toHaveProperty('labels');
    expect(plain.baselines.map((b) => b.protocolKey)).toEqual([plain.probeTasks[0].protocolKey]);
    const plan = planSweep(spec({ probe: { timesteps: [5, 25], sigmas: [0.06], trainSize: 1000, labels: [100, 500, 'all'] } }));
    expect(plan.labels).toEqual([100, 500, 'all']);
    // The same tasks (one feature pass each): only the budgets are new.
    expect(plan.probeTasks.map((t) => [t.runKey, t.noiseLevel, t.protocolKey])).toEqual(plain.probeTasks.map((t) => [t.runKey, t.noiseLevel, t.protocolKey]));
    expect(plan.probeTasks.every((t) => JSON.stringify(t.labels) === '[100,500,"all"]')).toBe(true);
    expect(plan.baselines.map((b) => [b.kind, b.protocol.labels, b.protocolKey])).toEqual([
      ['pixels', 100, `${plain.probeTasks[0].protocolKey};labels=100`],
      ['pixels', 500, `${plain.probeTasks[0].protocolKey};labels=500`],
      ['pixels', undefined, plain.probeTasks[0].protocolKey],
    ]);
    expect(plan.counts.baselines).toBe(3);
  });

  it('refuses label budgets out of range or order with probe.labels.i', () => {
    const r = validateSweepSpec({ ...spec(), probe: { timesteps: [5], sigmas: [0.06], trainSize: 1000, labels: [5, 2000, 'all', 'all'] } });
    expect(r.ok ? [] : r.issues.map((i) => i.path)).toEqual(['probe.labels.0', 'probe.labels.1', 'probe.labels.3']);
  });

  it('plans fine-tuning: named cells with the sweep (trained runs only), best later; its own protocol key', () => {
    const named = planSweep(
      spec({
        baselines: ['pixels', 'untrained'],
        probe: { timesteps: [5, 25], sigmas: [0.06], trainSize: 1000, finetune: { cells: [{ layer: 'out_2', noiseLevel: 25 }, { layer: 'out_4', noiseLevel: 25 }], labels: 100, epochs: 3 } },
      }),
    );
    const tuned = named.probeTasks.filter((t) => t.protocol.probe === 'finetune');
    // One task per trained run at level 25 covering both layers; the untrained controls are not fine-tuned.
    expect(tuned.map((t) => t.runKey)).toEqual(['ddpm-tiny-s0', 'ddpm-tiny-s1', 'ddpm-tiny-s2', 'edm-small-s0', 'edm-small-s1', 'edm-small-s2']);
    expect(tuned[0]).toMatchObject({ noiseLevel: 25, layers: ['out_2', 'out_4'], labels: [100] });
    expect(tuned[0].protocol).toMatchObject({ probe: 'finetune', epochs: 3, learningRate: 1e-3, batchSize: 128, augment: true, noise: 'fixed', trainSize: 1000, standardize: true });
    expect(tuned[0].protocolKey).toContain('probe=finetune');
    expect(tuned[0].protocolKey).toContain('aug=1');
    const linear = named.probeTasks.find((t) => t.protocol.probe === 'fast');
    expect(linear?.protocolKey).not.toContain('aug=');
    expect(tuned[0].protocolKey).not.toBe(linear?.protocolKey);
    // `best` plans nothing at submit: the orchestrator adds the task once the run's linear results exist.
    const best = planSweep(spec({ probe: { timesteps: [5, 25], sigmas: [0.06], trainSize: 1000, finetune: {} } }));
    expect(best.probeTasks.every((t) => t.protocol.probe === 'fast')).toBe(true);
    expect(best.probeTasks).toHaveLength(planSweep(spec()).probeTasks.length);
  });

  it('refuses a fine-tuning cell of an unknown layer, and a budget out of range, with the path of the field', () => {
    const r = validateSweepSpec({ ...spec(), probe: { timesteps: [5], sigmas: [0.06], trainSize: 1000, finetune: { cells: [{ layer: 'out_2', noiseLevel: 5 }, { layer: 'blk_1', noiseLevel: 5 }], labels: 5000 } } });
    expect(r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      expect.stringMatching(/^probe\.finetune\.cells\.1\.layer: unknown layer "blk_1"/),
      expect.stringMatching(/^probe\.finetune\.labels: 5000 labels exceed the probe's 1000 training images/),
    ]);
  });

  it("carries a model's imageSize into its runs (the untrained control's too), absent otherwise", () => {
    const plan = planSweep(
      spec({ models: [{ method: 'ddpm', unet: 'small', imageSize: 28 }, { name: 'padded', method: 'ddpm', unet: 'tiny' }], baselines: ['untrained'], probe: { timesteps: [5], layers: 'all' } }),
    );
    expect(plan.runs.map((r) => [r.key, r.hyper.imageSize])).toEqual([
      ['ddpm-small-s0', 28],
      ['ddpm-small-s1', 28],
      ['ddpm-small-s2', 28],
      ['ddpm-small-untrained-s0', 28],
      ['padded-s0', undefined],
      ['padded-s1', undefined],
      ['padded-s2', undefined],
      ['padded-untrained-s0', undefined],
    ]);
    // 28, 14, 7: the same 9 decoder blocks as at 32.
    expect(plan.probeTasks[0].layers).toHaveLength(9);
  });

  it('resolves every default into the run: warm-up, EMA cap per method, checkpoint interval', () => {
    const plan = planSweep(spec());
    expect(plan.runs[0].hyper).toEqual({ steps: 50, batchSize: 64, learningRate: 2e-4, warmupSteps: 5, gradClip: 1, emaDecayCap: 0.9999, checkpointEvery: 50, trainSize: null });
    expect(plan.runs[3].hyper.emaDecayCap).toBe(0.9993);
  });

  it('records the whole probe protocol, test split included', () => {
    const [task] = planSweep(spec()).probeTasks;
    expect(task.protocol).toEqual({ pooling: 'gap', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 15, batchSize: 128, learningRate: 1e-3, standardize: true, trainSize: 1000, testSize: 10000, probeSeed: 0 });
    expect(task.protocolKey).toContain('n=1000/10000');
  });

  it('starts an adaptive noise search at its coarse levels, and records the protocols', () => {
    const plan = planSweep(spec({ probe: { timesteps: [1, 2, 3, 5, 8, 11, 15, 20], sigmas: [0.01, 0.02, 0.06], noiseSearch: { search: 'adaptive', coarse: 3 }, protocol: 'reference', noise: 'fresh' } }));
    expect(plan.probeTasks.filter((t) => t.runKey === 'ddpm-tiny-s0').map((t) => t.noiseLevel)).toEqual([1, 8, 20]);
    expect(plan.probeTasks.filter((t) => t.runKey === 'edm-small-s0').map((t) => t.noiseLevel)).toEqual([0.01, 0.02, 0.06]);
    expect(plan.probeTasks[0].protocol).toMatchObject({ noise: 'fresh', probe: 'reference' });
    expect(plan.probeTasks[0].protocolKey).toContain('noise=fresh:0;probe=reference');
  });

  it('plans probing during pretraining into each trained run: its layers, noise levels and small protocol', () => {
    const plan = planSweep(spec({ baselines: ['untrained'], pretrain: { steps: 50, progressProbe: { every: 10, sigmas: [0.5, 0.5, 2], trainSize: 500, testSize: 200, epochs: 3, earlyStop: { patience: 2 } } } }));
    const ddpm = plan.runs.find((r) => r.key === 'ddpm-tiny-s0')?.hyper.progressProbe;
    const edm = plan.runs.find((r) => r.key === 'edm-small-s0')?.hyper.progressProbe;
    // DDPM: the smallest level of the probe grid by default; `all`: the run's decoder blocks.
    expect(ddpm).toEqual({
      every: 10,
      noiseLevels: [5],
      layers: ['out_1', 'out_2', 'out_3', 'out_4'],
      protocol: { pooling: 'gap', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 3, batchSize: 128, learningRate: 1e-3, standardize: true, trainSize: 500, testSize: 200, probeSeed: 0 },
      earlyStop: { patience: 2, minDelta: 0.002 },
    });
    expect(edm).toMatchObject({ noiseLevels: [0.5, 2], layers: expect.arrayContaining(['out_9']) });
    // The 0-step control has nothing to probe during pretraining.
    expect(plan.runs.filter((r) => r.untrained).map((r) => r.hyper.progressProbe)).toEqual([undefined, undefined]);
    // Off unless asked for.
    expect(planSweep(spec()).runs.every((r) => r.hyper.progressProbe === undefined)).toBe(true);
  });

  it('carries the settings a spec names over the defaults: warm-up, EMA cap, loss curve, checkpoint interval, training images', () => {
    const hyper = planSweep(spec({ pretrain: { steps: 50, warmupSteps: 7, emaDecayCap: 0.99, lossEvery: 5, checkpointEvery: 20, trainSize: 600 } })).runs[1].hyper;
    expect(hyper).toStrictEqual({ steps: 50, batchSize: 64, learningRate: 2e-4, warmupSteps: 7, gradClip: 1, emaDecayCap: 0.99, checkpointEvery: 20, trainSize: 600, lossEvery: 5 });
    // Without lossEvery the run has no such field (the worker's default applies), not an undefined one.
    expect(planSweep(spec()).runs[0].hyper).not.toHaveProperty('lossEvery');
    // A long run warms up over at most 1000 steps.
    expect(planSweep(spec({ pretrain: { steps: 20_000 } })).runs[0].hyper.warmupSteps).toBe(1000);
  });

  it('probes the layers a spec lists, for every run, in its order', () => {
    const plan = planSweep(spec({ probe: { timesteps: [5], sigmas: [0.06], layers: ['out_4', 'out_2'] } }));
    expect(plan.probeTasks.map((t) => t.layers)).toEqual(Array.from({ length: 6 }, () => ['out_4', 'out_2']));
    expect(plan.counts.probeCells).toBe(12);
  });

  it('fine-tunes named cells at several noise levels: one task per level with its distinct layers; `all` labels: no budget field', () => {
    const plan = planSweep(
      spec({
        models: [{ method: 'ddpm', unet: 'tiny' }],
        pretrain: { steps: 50, seeds: [0] },
        probe: { timesteps: [5, 25], trainSize: 1000, finetune: { cells: [{ layer: 'out_2', noiseLevel: 25 }, { layer: 'out_4', noiseLevel: 5 }, { layer: 'out_2', noiseLevel: 25 }, { layer: 'out_3', noiseLevel: 25 }] } },
      }),
    );
    const tuned = plan.probeTasks.filter((t) => t.protocol.probe === 'finetune');
    expect(tuned.map((t) => [t.runKey, t.noiseLevel, t.layers])).toEqual([
      ['ddpm-tiny-s0', 25, ['out_2', 'out_3']],
      ['ddpm-tiny-s0', 5, ['out_4']],
    ]);
    for (const t of tuned) expect(t).not.toHaveProperty('labels');
    expect(plan.counts).toMatchObject({ probeTasks: 4, probeCells: 2 * 4 + 3 });
  });

  it("imports a pretrained model at the model's own image size", () => {
    const plan = planSweep(spec({ models: [{ name: 'twin', method: 'ddpm', unet: 'tiny', imageSize: 28, checkpoint: { path: '/m/twin.safetensors' } }] }));
    expect(plan.runs.map((r) => [r.key, r.hyper.imageSize])).toEqual([['twin-s0', 28]]);
    expect(plan.runs[0].hyper).toStrictEqual({ steps: 0, batchSize: 64, learningRate: 2e-4, warmupSteps: 0, gradClip: 1, emaDecayCap: 0.9999, checkpointEvery: 1, trainSize: null, imageSize: 28, importFrom: { path: '/m/twin.safetensors' } });
  });

  it('probes listed layers during pretraining, at its own DDPM timesteps, without early stop unless asked', () => {
    const plan = planSweep(spec({ pretrain: { steps: 50, seeds: [0], progressProbe: { every: 10, layers: ['out_3', 'out_1'], timesteps: [7, 7, 3] } } }));
    const ddpm = plan.runs[0].hyper.progressProbe;
    expect(ddpm).toMatchObject({ noiseLevels: [7, 3], layers: ['out_3', 'out_1'] });
    expect(ddpm).not.toHaveProperty('earlyStop');
    // The EDM model has no sigmas of its own: the smallest of the probe grid.
    expect(plan.runs[1].hyper.progressProbe?.noiseLevels).toEqual([0.06]);
  });

  it('refuses probing during pretraining with no noise level to probe, naming the grid of the model\'s method', () => {
    // The schema requires the grid of each method present; planSweep still names the field when it is empty.
    const refusal = (s: ReturnType<typeof spec>) => {
      try {
        planSweep(s);
        return null;
      } catch (error) {
        return error instanceof PlanError ? [error.path.join('.'), error.message] : error;
      }
    };
    const withProbe = spec({ pretrain: { steps: 50, progressProbe: { every: 10 } } });
    expect(refusal({ ...withProbe, probe: { ...withProbe.probe, timesteps: [] } })).toEqual(['pretrain.progressProbe.timesteps', 'give the timesteps to probe during pretraining']);
    expect(refusal({ ...withProbe, probe: { ...withProbe.probe, sigmas: undefined } })).toEqual(['pretrain.progressProbe.sigmas', 'give the sigmas to probe during pretraining']);
    expect(refusal(withProbe)).toBeNull();
  });

  it('plans no probe task for a model whose grid is missing (the schema refuses such a spec; the planner does not invent levels)', () => {
    const s = spec();
    const noSigmas = planSweep({ ...s, probe: { ...s.probe, sigmas: undefined } });
    expect(noSigmas.probeTasks.map((t) => t.noiseLevel)).toEqual([5, 25, 5, 25, 5, 25]);
    const noTimesteps = planSweep({ ...s, probe: { ...s.probe, timesteps: undefined } });
    expect(noTimesteps.probeTasks.map((t) => [t.runKey, t.noiseLevel])).toEqual([['edm-small-s0', 0.06], ['edm-small-s1', 0.06], ['edm-small-s2', 0.06]]);
  });

  it('is deterministic, and equal specs hash equally whatever their key order', () => {
    expect(planSweep(spec())).toEqual(planSweep(spec()));
    expect(canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] })).toBe('{"a":[2,{"c":4,"d":3}],"b":1}');
    expect(planSweep(spec()).specHash).not.toBe(planSweep(spec({ name: 'other' })).specHash);
  });
});

describe('the untrained-network baseline', () => {
  it('adds one 0-step run per model (its first seed) probed on the same grid, and no baseline job', () => {
    const plan = planSweep(spec({ baselines: ['pixels', 'untrained'] }));
    const controls = plan.runs.filter((r) => r.untrained);
    expect(controls.map((r) => [r.key, r.seed, r.hyper.steps])).toEqual([['ddpm-tiny-untrained-s0', 0, 0], ['edm-small-untrained-s0', 0, 0]]);
    expect(plan.probeTasks.filter((t) => t.runKey === 'ddpm-tiny-untrained-s0').map((t) => t.noiseLevel)).toEqual([5, 25]);
    expect(plan.baselines.map((b) => b.kind)).toEqual(['pixels']);
    expect(plan.counts).toMatchObject({ runs: 8, probeTasks: 12, pretrainSteps: 300 });
  });

  it('plans a model pretrained elsewhere (models[].checkpoint) as one imported run of 0 steps, probed on the grid, never trained', () => {
    const sha256 = 'ab'.repeat(32);
    const plan = planSweep(
      spec({
        models: [
          { method: 'ddpm', unet: 'tiny' },
          { name: 'twin-tiny', method: 'ddpm', unet: 'tiny', checkpoint: { path: '/models/twin.safetensors', sha256 } },
          { name: 'twin-dit', method: 'edm', backbone: 'dit', dit: { depth: 2, width: 16, heads: 2, patch: 4 }, checkpoint: { path: 'imports/dit.safetensors' } },
        ],
        pretrain: { steps: 50, seeds: [3, 4], progressProbe: { every: 10 } },
        baselines: ['pixels', 'untrained'],
      }),
    );
    const twin = plan.runs.filter((r) => r.modelName === 'twin-tiny');
    // One run (its first seed) plus the untrained control: seeds would give the same weights.
    expect(twin.map((r) => [r.key, r.untrained, r.hyper.steps])).toEqual([['twin-tiny-s3', false, 0], ['twin-tiny-untrained-s3', true, 0]]);
    expect(twin[0].hyper).toMatchObject({ steps: 0, warmupSteps: 0, trainSize: null, importFrom: { path: '/models/twin.safetensors', sha256 } });
    // Pretraining's probing does not apply to a model that is not trained.
    expect(twin[0].hyper.progressProbe).toBeUndefined();
    expect(twin[1].hyper.importFrom).toBeUndefined();
    // No imageSize in the spec: none in the run (the padded size), not an undefined field.
    expect(twin[0].hyper).not.toHaveProperty('imageSize');
    const dit = plan.runs.find((r) => r.key === 'twin-dit-s3');
    expect(dit).toMatchObject({ backbone: 'dit', method: 'edm', dit: { depth: 2, width: 16 }, hyper: { importFrom: { path: 'imports/dit.safetensors' } } });
    expect(dit?.hyper.importFrom).not.toHaveProperty('sha256');
    // Probed on the whole grid, every decoder block / every DiT block.
    expect(plan.probeTasks.filter((t) => t.runKey === 'twin-tiny-s3').map((t) => [t.noiseLevel, t.layers])).toEqual([
      [5, ['out_1', 'out_2', 'out_3', 'out_4']],
      [25, ['out_1', 'out_2', 'out_3', 'out_4']],
    ]);
    expect(plan.probeTasks.filter((t) => t.runKey === 'twin-dit-s3').map((t) => t.noiseLevel)).toEqual([0.06]);
    // Only the sweep's own model trains: 2 seeds x 50 steps.
    expect(plan.counts.pretrainSteps).toBe(100);
    expect(plan.runs.filter((r) => r.hyper.steps > 0).map((r) => r.key)).toEqual(['ddpm-tiny-s3', 'ddpm-tiny-s4']);
  });
});

describe('validateSweepSpec', () => {
  it('refuses a bad models[].checkpoint with the path of the bad field', () => {
    const issues = (checkpoint: unknown) => {
      const r = validateSweepSpec({ ...spec(), models: [{ method: 'ddpm', unet: 'tiny', checkpoint }] });
      return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
    };
    expect(issues({ path: '/m/model.safetensors' })).toEqual([]);
    expect(issues({ path: '/m/model.pt' })).toEqual([expect.stringMatching(/^models\.0\.checkpoint\.path: .*\.safetensors/)]);
    expect(issues({ path: '/m/model.safetensors', sha256: 'XYZ' })).toEqual([expect.stringMatching(/^models\.0\.checkpoint\.sha256: 64 lowercase hex digits/)]);
    expect(issues({ path: '/m/model.safetensors', url: 'https://x' })).toEqual([expect.stringMatching(/^models\.0\.checkpoint/)]);
    expect(issues('/m/model.safetensors')).toEqual([expect.stringMatching(/^models\.0\.checkpoint/)]);
  });

  it('reports the fields of the UNet a spec meant, not a bare "invalid input"', () => {
    const r = validateSweepSpec({ ...spec(), models: [{ method: 'ddpm', unet: { baseChannels: -1, channelMults: [1], blocksPerLevel: 1 } }] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues).toEqual([{ path: 'models.0.unet.baseChannels', message: expect.stringContaining('>0') }]);
    const preset = validateSweepSpec({ ...spec(), models: [{ method: 'ddpm', unet: 'huge' }] });
    if (!preset.ok) expect(preset.issues).toEqual([{ path: 'models.0.unet', message: expect.stringContaining('tiny') }]);
    expect(preset.ok).toBe(false);
  });

  it('refuses duplicate model names with the path of the second', () => {
    const r = validateSweepSpec({ ...spec(), models: [{ method: 'ddpm', unet: 'tiny' }, { method: 'ddpm', unet: 'tiny' }] });
    expect(r.ok ? [] : r.issues.map((i) => i.path)).toEqual(['models.1.name']);
  });

  it('refuses a bad progressProbe with the path of each bad field', () => {
    const issues = (progressProbe: unknown, steps = 50) => {
      const r = validateSweepSpec({ ...spec(), pretrain: { steps, progressProbe } });
      return r.ok ? [] : r.issues.map((i) => i.path);
    };
    expect(issues({ every: 10 })).toEqual([]);
    expect(issues({ every: 0 })).toEqual(['pretrain.progressProbe.every']);
    expect(issues({ every: 60 })).toEqual(['pretrain.progressProbe.every']);
    // One issue per bad field, naming both models that lack the layer.
    expect(issues({ every: 10, layers: ['out_1', 'nope'] })).toEqual(['pretrain.progressProbe.layers.1']);
    const r = validateSweepSpec({ ...spec(), pretrain: { steps: 50, progressProbe: { every: 10, layers: ['out_1', 'nope'] } } });
    expect(r.ok ? [] : r.issues.map((i) => i.message)).toEqual([expect.stringMatching(/^unknown layer "nope" for model 0 \(a UNet; known: .*out_1.*\); model 1 \(a UNet; known: .*\)$/)]);
    expect(issues({ every: 10, timesteps: [5, 2000] })).toEqual(['pretrain.progressProbe.timesteps.1']);
    expect(issues({ every: 10, timesteps: [1, 2, 3, 4, 5, 6, 7, 8, 9] })).toEqual(['pretrain.progressProbe.timesteps']);
    // The small grid: 9 decoder blocks of edm-small x 8 sigmas = 72 cells per probe.
    expect(issues({ every: 10, sigmas: [1, 2, 3, 4, 5, 6, 7, 8] })).toEqual(['pretrain.progressProbe.layers']);
    expect(issues({ every: 10, earlyStop: { patience: 0 } })).toEqual(['pretrain.progressProbe.earlyStop.patience']);
    expect(issues({ every: 10, earlyStop: { patience: 2, minDelta: -0.1 } })).toEqual(['pretrain.progressProbe.earlyStop.minDelta']);
    expect(issues({ every: 10, trainSize: 70000, epochs: 0 })).toEqual(expect.arrayContaining(['pretrain.progressProbe.epochs']));
    expect(issues({ every: 10, typo: 1 })).toEqual(['pretrain.progressProbe']);
  });
});
