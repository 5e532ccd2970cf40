import fc from 'fast-check';
import { validateSweepSpec } from './validate';

const valid = {
  name: 'fuzz',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, groups: 4 } }],
  pretrain: { steps: 10, seeds: [0] },
  probe: { timesteps: [5], layers: ['out_1'] },
};

/** Replaces the value at one random path of the valid spec with an arbitrary JSON value. */
const mutated = fc
  .tuple(fc.constantFrom(
    ['name'], ['dataset'], ['models'], ['models', 0], ['models', 0, 'unet'], ['models', 0, 'unet', 'baseChannels'],
    ['models', 0, 'method'], ['pretrain'], ['pretrain', 'steps'], ['pretrain', 'seeds'], ['probe'], ['probe', 'layers'],
    ['probe', 'layers', 0], ['probe', 'timesteps'], ['probe', 'trainSize'], ['baselines'],
  ), fc.jsonValue())
  .map(([path, value]) => {
    const spec = structuredClone(valid) as Record<string, unknown>;
    let node: Record<string | number, unknown> = spec;
    for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
    node[path[path.length - 1]] = value;
    return spec;
  });

describe('validateSweepSpec under malformed input', () => {
  it('accepts the valid base spec', () => {
    expect(validateSweepSpec(valid).ok).toBe(true);
  });

  it('never throws on arbitrary JSON: it answers ok or names issues', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const r = validateSweepSpec(value);
        return r.ok || r.issues.length > 0;
      }),
      { numRuns: 500 },
    );
  });

  it('never throws when any one field holds an arbitrary value, and names a path under it when it fails', () => {
    fc.assert(
      fc.property(mutated, (spec) => {
        const r = validateSweepSpec(spec);
        return r.ok || r.issues.every((i) => typeof i.path === 'string' && i.message.length > 0);
      }),
      { numRuns: 1000 },
    );
  });
});
