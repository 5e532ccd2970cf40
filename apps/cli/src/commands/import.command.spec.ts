import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CliError, UsageError } from '../api-client';
import { importInline } from './import.command';

const ROOT = path.resolve(__dirname, '../../../..');
const FIXTURE = path.join(ROOT, 'libs/diffusion/fixtures/twin-unet-tiny.safetensors');
const DIT_FIXTURE = path.join(ROOT, 'libs/diffusion/fixtures/twin-dit-small.safetensors');
const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const made: string[] = [];
const tmp = () => {
  made.push(fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-import-cli-')));
  return made[made.length - 1];
};
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('ddae import', () => {
  // The diffusion library is lazy-loaded in the CLI (TensorFlow.js only for inline commands): so here.
  let lib: typeof import('@ddae/diffusion');
  const verifyCheckpoint = (p: string) => lib.verifyCheckpoint(p);
  beforeAll(async () => {
    lib = await import('@ddae/diffusion');
  });

  it('writes a checkpoint from the twin fixture and reports it with the source sha256', async () => {
    const out = path.join(tmp(), 'imported');
    const r = JSON.parse(await importInline(FIXTURE, { preset: 'tiny', method: 'edm', dataset: 'fashion-mnist', out }, { json: true }));
    expect(r).toEqual({
      checkpoint: path.join(out, 'step-00000000'),
      source: FIXTURE,
      sha256: sha256(FIXTURE),
      backbone: 'unet',
      method: 'edm',
      parameters: 41609,
      imageSize: 32,
      imageChannels: 1,
    });
    const found = verifyCheckpoint(r.checkpoint);
    expect(found.manifest.method).toBe('edm');
    expect(found.manifest.imported).toEqual({ format: 'safetensors', source: FIXTURE, sha256: r.sha256 });
  });

  it('imports a DiT from --dit, reading the channels from the file', async () => {
    const out = path.join(tmp(), 'dit');
    const text = await importInline(DIT_FIXTURE, { backbone: 'dit', dit: '{"depth":2,"width":16,"heads":2,"patch":4}', out }, { json: false });
    expect(text).toContain(`checkpoint ${path.join(out, 'step-00000000')}`);
    expect(text).toContain(`sha256 ${sha256(DIT_FIXTURE)}`);
    expect(verifyCheckpoint(path.join(out, 'step-00000000')).manifest.config).toMatchObject({ backbone: 'dit', depth: 2, width: 16, imageSize: 32, imageChannels: 1 });
  });

  it('names the first tensor that does not fit and writes nothing', async () => {
    const out = path.join(tmp(), 'nothing');
    await expect(importInline(FIXTURE, { preset: 'small', out }, { json: false })).rejects.toThrow(
      /does not fit the unet given \(--preset\/--unet\/--dit\): tensor "temb1\.weight" \(our temb\.dense1\.w\): expected shape \[64, 16\], found \[32, 8\]; nothing written/,
    );
    await expect(importInline(FIXTURE, { preset: 'dit-tiny', out }, { json: false })).rejects.toThrow(/does not fit the dit given .*missing tensor "patchify\.weight"/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses a corrupt file, a 3-channel data set for a 1-channel file and a non-empty --out', async () => {
    const dir = tmp();
    const bad = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(bad, fs.readFileSync(FIXTURE).subarray(0, 1000));
    await expect(importInline(bad, { preset: 'tiny', out: path.join(dir, 'a') }, { json: false })).rejects.toThrow(/bad\.safetensors: safetensors: .*; nothing written/);
    await expect(importInline(FIXTURE, { preset: 'tiny', dataset: 'cifar10', out: path.join(dir, 'b') }, { json: false })).rejects.toThrow(/takes 1-channel images, but cifar10 has 3/);
    expect(fs.existsSync(path.join(dir, 'a')) || fs.existsSync(path.join(dir, 'b'))).toBe(false);
    await expect(importInline(FIXTURE, { preset: 'tiny', out: dir }, { json: false })).rejects.toThrow(/--out .* is not empty/);
  });

  it('names the fix for a missing file, architecture, --out or a bad --method', async () => {
    await expect(importInline(undefined, { preset: 'tiny', out: 'x' }, { json: false })).rejects.toThrow(UsageError);
    await expect(importInline('/nonexistent.safetensors', { preset: 'tiny', out: 'x' }, { json: false })).rejects.toThrow(/is not a file/);
    await expect(importInline(FIXTURE, { out: path.join(tmp(), 'x') }, { json: false })).rejects.toThrow(/needs --preset/);
    await expect(importInline(FIXTURE, { preset: 'tiny' }, { json: false })).rejects.toThrow(/import needs --out/);
    await expect(importInline(FIXTURE, { preset: 'tiny', method: 'vp', out: 'x' }, { json: false })).rejects.toThrow(CliError);
  });

  it('runs as a command: ddae import FILE --preset tiny --out DIR --json', () => {
    const out = path.join(tmp(), 'cmd');
    const r = spawnSync(process.execPath, ['-r', require.resolve('@swc-node/register'), path.join(ROOT, 'apps/cli/src/main.ts'), 'import', FIXTURE, '--preset', 'tiny', '--out', out, '--json'], {
      env: { ...process.env, SWC_NODE_PROJECT: path.join(ROOT, 'tsconfig.json') },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop() as string)).toMatchObject({ checkpoint: path.join(out, 'step-00000000'), sha256: sha256(FIXTURE) });
    // A foreign option is a usage error naming import's own.
    const foreign = spawnSync(process.execPath, ['-r', require.resolve('@swc-node/register'), path.join(ROOT, 'apps/cli/src/main.ts'), 'import', FIXTURE, '--steps', '3'], {
      env: { ...process.env, SWC_NODE_PROJECT: path.join(ROOT, 'tsconfig.json') },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(foreign.status).toBe(2);
    expect(foreign.stderr).toMatch(/import does not take --steps: its options are --backbone, --preset/);
  }, 120_000);

  it('round-trips through the twin names: a file exported from a checkpoint imports to the same weights', async () => {
    const first = path.join(tmp(), 'one');
    await importInline(FIXTURE, { preset: 'tiny', out: first }, { json: true });
    const { readCheckpointData, toTorchTwinTensors, readSafetensors, writeSafetensors } = lib;
    const manifest = verifyCheckpoint(path.join(first, 'step-00000000')).manifest;
    const data = readCheckpointData(path.join(first, 'step-00000000'));
    const values = new Map(manifest.params.map((p) => [p.name, data.ema.subarray(p.offset, p.offset + p.size)]));
    const exported = readSafetensors(writeSafetensors(toTorchTwinTensors(manifest.config, values)));
    const original = readSafetensors(fs.readFileSync(FIXTURE));
    for (const [name, t] of exported.tensors) expect(Array.from(t.data)).toEqual(Array.from(original.tensors.get(name)?.data ?? []));
  });
});
