import { sweepSpecSchema } from '@ddae/contracts';
import { nextNoiseLevels } from './noise-search';
import { finetuneFollowUpOf, noiseSearchOf } from './orchestrator';
import { canonicalJson, defaultModelName, planSweep, pretrainSettings, resolveFinetune, type RunHyper } from './plan';
import { planView } from './plan-view';

// Sharper checks of the sweep's pure decisions, each written against a mutant that survived
// `npm run -s mutation -- --only sweeps` (docs/results.md).
const GRID = [1, 2, 3, 5, 8, 11, 15, 20, 25, 30, 40, 50, 65, 80, 100, 125, 150, 200, 250, 300];
const OPTS = { coarse: 4, minStep: 0 };

describe('noise search edges', () => {
  it('an empty grid is done at once', () => {
    expect(nextNoiseLevels([], new Map(), OPTS)).toEqual({ next: [], done: true, best: null });
  });

  it('takes the lowest level on ties', () => {
    expect(nextNoiseLevels(GRID, new Map([[5, 0.9], [15, 0.9], [300, 0.1]]), OPTS).best).toEqual({ noiseLevel: 5, accuracy: 0.9 });
  });

  it('brackets a lone result from the grid ends (partial inputs)', () => {
    // 15 is grid index 6: the left side is [-1, 6) -> index 2, the right side (6, 20) -> index 13.
    expect(nextNoiseLevels(GRID, new Map([[15, 0.9]]), OPTS).next).toEqual([3, 80]);
    // At the last level only the left side remains: (-1, 19) -> index 9.
    expect(nextNoiseLevels(GRID, new Map([[300, 0.9]]), OPTS).next).toEqual([30]);
    // At the first level only the right side remains: (0, 20) -> index 10.
    expect(nextNoiseLevels(GRID, new Map([[1, 0.9]]), OPTS).next).toEqual([40]);
  });
});

describe('the planner\'s small decisions', () => {
  it('serialises with sorted keys and without undefined fields', () => {
    expect(canonicalJson({ d: 1, c: 2, b: 3, a: 4 })).toBe('{"a":4,"b":3,"c":2,"d":1}');
    // Not only reversed keys: a comparator that always answers "before" reverses them too.
    expect(canonicalJson({ b: 1, d: 2, a: 3, c: { z: 0, x: [{ q: 1, p: 2 }], y: 1 } })).toBe('{"a":3,"b":1,"c":{"x":[{"p":2,"q":1}],"y":1,"z":0},"d":2}');
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
  });

  it('names models by preset, DiT preset or size', () => {
    expect(defaultModelName('ddpm', { unet: 'tiny' })).toBe('ddpm-tiny');
    expect(defaultModelName('edm', { unet: { baseChannels: 24, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 8 } })).toBe('edm-b24');
    expect(defaultModelName('ddpm', { backbone: 'dit', dit: 'dit-tiny' })).toBe('ddpm-dit-tiny');
    expect(defaultModelName('ddpm', { backbone: 'dit', dit: { preset: 'dit-small' } } as never)).toBe('ddpm-dit-small');
    expect(defaultModelName('edm', { backbone: 'dit', dit: { depth: 2, width: 32, heads: 2, patch: 2 } } as never)).toBe('edm-dit-d2w32p2');
  });

  it('reads a run\'s adaptive noise search from its spec, by method', () => {
    const probe = { timesteps: [5, 25], sigmas: [0.06, 0.5], noiseSearch: { search: 'adaptive', coarse: 3, minStep: 2 } };
    expect(noiseSearchOf({ probe }, 'ddpm')).toEqual({ grid: [5, 25], options: { coarse: 3, minStep: 2 } });
    expect(noiseSearchOf({ probe }, 'edm')).toEqual({ grid: [0.06, 0.5], options: { coarse: 3, minStep: 2 } });
    expect(noiseSearchOf({ probe: { ...probe, timesteps: undefined } }, 'ddpm')?.grid).toEqual([]);
    expect(noiseSearchOf({ probe: { ...probe, noiseSearch: undefined } }, 'ddpm')).toBeNull();
    expect(noiseSearchOf({ probe: { ...probe, noiseSearch: { search: 'grid' } } }, 'ddpm')).toBeNull();
    expect(noiseSearchOf(null, 'ddpm')).toBeNull();
  });

  it('samples a dry run\'s plan beyond its limit, and says so', () => {
    const plan = planSweep(sweepSpecSchema.parse({ name: 'v', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 50, seeds: [0, 1, 2] }, probe: { timesteps: [5, 25], trainSize: 1000 } }));
    const all = planView(plan);
    expect(all.runs).toHaveLength(plan.runs.length);
    expect(all.sampled).toBeUndefined();
    const two = planView(plan, 2);
    expect(two.runs.map((r) => r.key)).toEqual(plan.runs.slice(0, 2).map((r) => r.key));
    expect(two.sampled).toEqual({ runs: { shown: 2, of: plan.runs.length }, probeTasks: { shown: 2, of: plan.probeTasks.length } });
    expect(planView(plan, plan.probeTasks.length).sampled).toBeUndefined();
    // Only the probe tasks exceed the limit (3 runs, 6 tasks): still sampled, every run shown.
    expect(planView(plan, plan.runs.length).sampled).toEqual({ runs: { shown: 3, of: 3 }, probeTasks: { shown: 3, of: 6 } });
    // Only the runs exceed it; and a plan exactly at the limit is not sampled.
    const fewTasks = { ...plan, probeTasks: plan.probeTasks.slice(0, 1) };
    expect(planView(fewTasks, 2).sampled).toEqual({ runs: { shown: 2, of: 3 }, probeTasks: { shown: 1, of: 1 } });
    expect(planView(fewTasks, 3).sampled).toBeUndefined();
    // No budgets in the spec: each task lists `all`.
    expect(all.probeTasks[0]).toStrictEqual({ run: 'ddpm-tiny-s0', noiseLevel: 5, layers: ['out_1', 'out_2', 'out_3', 'out_4'], labels: ['all'] });
  });

  it('shows the fields of each row: the run\'s network, steps, progress probe and import; the task\'s budgets; the baseline\'s budget', () => {
    const plan = planSweep(
      sweepSpecSchema.parse({
        name: 'v',
        dataset: 'fashion-mnist',
        models: [
          { method: 'ddpm', unet: 'tiny' },
          { name: 'twin', method: 'edm', backbone: 'dit', dit: { depth: 2, width: 16, heads: 2, patch: 4 }, checkpoint: { path: 'imports/dit.safetensors', sha256: 'ab'.repeat(32) } },
        ],
        pretrain: { steps: 50, seeds: [3], progressProbe: { every: 10 } },
        probe: { timesteps: [5], sigmas: [0.06], trainSize: 1000, labels: [100, 'all'] },
        baselines: ['pixels', 'untrained'],
      }),
    );
    const [trained, control, imported] = plan.runs;
    const view = planView(plan);
    expect(view.runs).toStrictEqual([
      { key: 'ddpm-tiny-s3', method: 'ddpm', model: 'ddpm-tiny', untrained: false, seed: 3, steps: 50, backbone: 'unet', unet: trained.unet, progressProbe: trained.hyper.progressProbe },
      { key: 'ddpm-tiny-untrained-s3', method: 'ddpm', model: 'ddpm-tiny', untrained: true, seed: 3, steps: 0, backbone: 'unet', unet: control.unet, progressProbe: null },
      { key: 'twin-s3', method: 'edm', model: 'twin', untrained: false, seed: 3, steps: 0, backbone: 'dit', dit: imported.dit, progressProbe: null, checkpoint: { path: 'imports/dit.safetensors', sha256: 'ab'.repeat(32) } },
      { key: 'twin-untrained-s3', method: 'edm', model: 'twin', untrained: true, seed: 3, steps: 0, backbone: 'dit', dit: imported.dit, progressProbe: null },
    ]);
    expect(trained.hyper.progressProbe).toMatchObject({ every: 10 });
    expect(trained.unet).toMatchObject({ baseChannels: 8 });
    expect(imported.dit).toMatchObject({ depth: 2, width: 16 });
    expect(view.probeTasks[0]).toStrictEqual({ run: 'ddpm-tiny-s3', noiseLevel: 5, layers: ['out_1', 'out_2', 'out_3', 'out_4'], labels: [100, 'all'] });
    expect(view.probeTasks.map((t) => t.run)).toEqual(['ddpm-tiny-s3', 'ddpm-tiny-untrained-s3', 'twin-s3', 'twin-untrained-s3']);
    expect(view.baselines).toStrictEqual([
      { dataset: 'fashion-mnist', kind: 'pixels', labels: 100 },
      { dataset: 'fashion-mnist', kind: 'pixels', labels: 'all' },
    ]);
  });

  it("resolves fine-tuning's test split (the whole test set by default) and its label budget ('all': no subset)", () => {
    const parse = (probe: Record<string, unknown>) =>
      sweepSpecSchema.parse({ name: 'f', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 50 }, probe: { timesteps: [5], trainSize: 1000, ...probe } });
    expect(resolveFinetune(parse({}))).toBeNull();
    const all = resolveFinetune(parse({ finetune: {} }));
    expect(all?.protocol.testSize).toBe(10_000);
    expect(all?.protocolKey).toContain('n=1000/10000');
    expect(all).not.toHaveProperty('labels');
    expect(all?.cells).toBe('best');
    const some = resolveFinetune(parse({ testSize: 500, batchSize: 64, finetune: { labels: 200 } }));
    expect(some?.protocol).toMatchObject({ testSize: 500, batchSize: 64, trainSize: 1000 });
    expect(some?.labels).toEqual([200]);
  });
});

describe("the orchestrator's fine-tuning follow-up and the pretraining task's settings", () => {
  // A spec as stored with its sweep (the input, defaults not applied).
  const stored = (probe: Record<string, unknown>) => ({ name: 'f', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 50 }, probe: { timesteps: [5], trainSize: 1000, ...probe } });

  it('follows a trained run\'s linear probes with fine-tuning of its best cell, at the spec\'s budget', () => {
    const best = resolveFinetune(sweepSpecSchema.parse(stored({ finetune: {} })));
    expect(best).not.toBeNull();
    expect(finetuneFollowUpOf(stored({ finetune: {} }), false)).toStrictEqual({ protocol: best?.protocol, protocolKey: best?.protocolKey });
    const budget = resolveFinetune(sweepSpecSchema.parse(stored({ finetune: { cells: 'best', labels: 200 } })));
    expect(finetuneFollowUpOf(stored({ finetune: { cells: 'best', labels: 200 } }), false)).toStrictEqual({ protocol: budget?.protocol, protocolKey: budget?.protocolKey, labels: [200] });
  });

  it('follows nothing: an untrained control, no fine-tuning, listed cells (planned with the sweep), a spec that does not parse', () => {
    expect(finetuneFollowUpOf(stored({ finetune: {} }), true)).toBeNull();
    expect(finetuneFollowUpOf(stored({}), false)).toBeNull();
    expect(finetuneFollowUpOf(stored({ finetune: { cells: [{ layer: 'out_2', noiseLevel: 5 }] } }), false)).toBeNull();
    expect(finetuneFollowUpOf({ ...stored({ finetune: {} }), models: 'ddpm-tiny' }, false)).toBeNull();
    expect(finetuneFollowUpOf(null, false)).toBeNull();
  });

  const hyper: RunHyper = {
    steps: 500,
    batchSize: 64,
    learningRate: 2e-4,
    warmupSteps: 100,
    gradClip: 1,
    emaDecayCap: 0.9999,
    checkpointEvery: 250,
    trainSize: 5000,
    lossEvery: 10,
    imageSize: 28,
    progressProbe: { every: 100 } as RunHyper['progressProbe'],
    importFrom: { path: 'imports/a.safetensors' },
    fid: { samples: 64, steps: 4, seed: 0 },
  };

  it("builds the pretraining task's settings from a run's hyper-parameters, and nothing else of them", () => {
    expect(pretrainSettings(hyper)).toStrictEqual({
      trainSize: 5000,
      imageSize: 28,
      steps: 500,
      batchSize: 64,
      learningRate: 2e-4,
      warmupSteps: 100,
      gradClip: 1,
      emaDecayCap: 0.9999,
      checkpointEvery: 250,
      lossEvery: 10,
    });
  });

  it('leaves out the training set size (all images), the image size and the loss interval when the run has none', () => {
    const { lossEvery: _l, imageSize: _i, ...rest } = hyper;
    expect(pretrainSettings({ ...rest, trainSize: null })).toStrictEqual({
      steps: 500,
      batchSize: 64,
      learningRate: 2e-4,
      warmupSteps: 100,
      gradClip: 1,
      emaDecayCap: 0.9999,
      checkpointEvery: 250,
    });
    // A planned run's hyper-parameters go through unchanged.
    const run = planSweep(sweepSpecSchema.parse(stored({}))).runs[0];
    expect(pretrainSettings(run.hyper)).toMatchObject({ steps: 50, batchSize: run.hyper.batchSize, checkpointEvery: run.hyper.checkpointEvery });
  });
});
