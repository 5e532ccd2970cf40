import fc from 'fast-check';
import { parseSpecText, validateSweepSpec } from './validate';

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

describe('validateSweepSpec: the path and message of each refusal', () => {
  it("reports a union's issues at the field of the form the input was meant for, with the full path", () => {
    // An object for `unet`: the configuration form's issues, the bad field's and the unknown key's (at the object).
    const r = validateSweepSpec({ ...valid, models: [{ method: 'ddpm', unet: { baseChannels: 'x', channelMults: [1], blocksPerLevel: 1, foo: 1 } }] });
    expect(r).toStrictEqual({
      ok: false,
      issues: [
        { path: 'models.0.unet.baseChannels', message: 'Invalid input: expected number, received string' },
        { path: 'models.0.unet', message: 'Unrecognized key: "foo"' },
      ],
    });
    const cells = validateSweepSpec({ ...valid, probe: { ...valid.probe, finetune: { cells: [{ layer: 'out_1' }] } } });
    expect(cells).toStrictEqual({ ok: false, issues: [{ path: 'probe.finetune.cells.0.noiseLevel', message: 'Invalid input: expected number, received undefined' }] });
  });

  it('reports what a union expected when no form got as far as a field, leaving out the bare type mismatches', () => {
    expect(validateSweepSpec({ ...valid, probe: { ...valid.probe, finetune: { labels: 'x' } } })).toStrictEqual({
      ok: false,
      issues: [{ path: 'probe.finetune.labels', message: 'Invalid input: expected "all"' }],
    });
    expect(validateSweepSpec({ ...valid, probe: { ...valid.probe, layers: 5 } })).toStrictEqual({
      ok: false,
      issues: [{ path: 'probe.layers', message: 'Invalid input: expected "all"' }],
    });
    expect(validateSweepSpec({ ...valid, models: [{ method: 'ddpm', unet: 5 }] })).toStrictEqual({
      ok: false,
      issues: [{ path: 'models.0.unet', message: 'Invalid option: expected one of "tiny"|"small"|"base"|"reference"' }],
    });
  });

  // 4 models x 32 seeds x 64 timesteps: exactly 8,192 probe tasks.
  const timesteps = Array.from({ length: 64 }, (_, i) => i + 1);
  const seeds = Array.from({ length: 32 }, (_, i) => i);
  const models = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `m${i}`, method: 'ddpm', unet: 'tiny' }));

  it('accepts exactly the limit of probe tasks, and refuses one model more at `probe`', () => {
    const at = validateSweepSpec({ ...valid, models: models(4), pretrain: { steps: 10, seeds }, probe: { timesteps, layers: ['out_1'] } });
    expect(at.ok && at.plan.counts.probeTasks).toBe(8192);
    const over = validateSweepSpec({ ...valid, models: models(5), pretrain: { steps: 10, seeds }, probe: { timesteps, layers: ['out_1'] } });
    expect(over).toStrictEqual({ ok: false, issues: [{ path: 'probe', message: expect.stringMatching(/^10240 probe tasks \(runs x noise levels\) exceed the limit of 8192: /) }] });
  });

  it('accepts exactly the limit of probe cells, and refuses more at `probe`', () => {
    // 5 DiT models of 20 blocks (all of them tapped) x 25 seeds x 40 timesteps: 100,000 cells in 5,000 tasks.
    const dits = Array.from({ length: 5 }, (_, i) => ({ name: `d${i}`, method: 'ddpm', backbone: 'dit', dit: { depth: 20, width: 16, heads: 2, patch: 4 } }));
    const spec = (levels: number) => ({ ...valid, models: dits, pretrain: { steps: 10, seeds: seeds.slice(0, 25) }, probe: { timesteps: timesteps.slice(0, levels), layers: 'all' } });
    const at = validateSweepSpec(spec(40));
    expect(at.ok && at.plan.counts).toMatchObject({ probeTasks: 5000, probeCells: 100_000 });
    expect(validateSweepSpec(spec(41))).toStrictEqual({ ok: false, issues: [{ path: 'probe', message: '102500 probe cells exceed the limit of 100000' }] });
  });
});

describe('parseSpecText', () => {
  it('parses YAML and JSON', () => {
    expect(parseSpecText('name: a\nsteps: [1, 2]\n')).toStrictEqual({ ok: true, value: { name: 'a', steps: [1, 2] } });
    expect(parseSpecText('{"name": "a"}')).toStrictEqual({ ok: true, value: { name: 'a' } });
  });

  it('refuses a document that does not parse, at the document (empty path), with its line', () => {
    const r = parseSpecText('a: [1\nb: 2');
    expect(r).toStrictEqual({ ok: false, issues: [{ path: '', message: expect.stringMatching(/^not valid YAML or JSON \(line 2\): Flow sequence/) }] });
  });

  it('refuses what the parser only warns about, with its line, and prints nothing', () => {
    const warn = jest.spyOn(process, 'emitWarning');
    // An unknown tag would turn 5 into the string "5"; a duplicate key would keep only the last value.
    expect(parseSpecText('name: a\nsteps: !int 5\n')).toStrictEqual({ ok: false, issues: [{ path: '', message: 'not valid YAML or JSON (line 2): Unresolved tag: !int' }] });
    expect(parseSpecText('name: a\nname: b\n')).toStrictEqual({ ok: false, issues: [{ path: '', message: 'not valid YAML or JSON (line 2): Map keys must be unique' }] });
    // A key that is a collection cannot be a JSON object's key: it stays a (refused later) string key, silently.
    expect(parseSpecText('? [1]\n: 2\n')).toStrictEqual({ ok: true, value: { '[ 1 ]': 2 } });
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
  });

  it('refuses an alias bomb (no line to name) without throwing', () => {
    const bomb = ['a: &a [1,1,1,1,1,1,1,1,1,1]', ...['b', 'c', 'd'].map((k, i) => `${k}: &${k} [${Array(10).fill(`*${'abc'[i]}`).join(',')}]`), `e: [${Array(10).fill('*d').join(',')}]`].join('\n');
    expect(parseSpecText(bomb)).toStrictEqual({ ok: false, issues: [{ path: '', message: 'not valid YAML or JSON: Excessive alias count indicates a resource exhaustion attack' }] });
  });
});
