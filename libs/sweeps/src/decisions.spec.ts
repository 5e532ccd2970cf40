import { sweepSpecSchema } from '@ddae/contracts';
import { nextNoiseLevels } from './noise-search';
import { noiseSearchOf } from './orchestrator';
import { canonicalJson, defaultModelName, planSweep } from './plan';
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
  });
});
