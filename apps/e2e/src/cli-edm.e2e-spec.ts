import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import type { LeaderboardView, SweepDetail, SweepSubmitted, WorkerList } from '@ddae/contracts';
import { startStack, type Stack } from './stack';

const ROOT = path.resolve(__dirname, '../../..');

/**
 * A tiny EDM sweep (VE, preconditioned; probed at sigma = 0.5), with its untrained control, on a
 * few hundred real Fashion-MNIST images: submitted, followed and read only through the CLI, as a
 * user would (`npm run -s ddae -- ...` from the repository, the token made with `token create`).
 */
const EDM_SWEEP = `name: e2e-cli-edm
dataset: fashion-mnist
models:
  - method: edm
    unet: tiny
pretrain: {steps: 8, batchSize: 8, learningRate: 0.001, checkpointEvery: 8, trainSize: 128, seeds: [0]}
probe: {layers: [out_2, out_4], sigmas: [0.5], pooling: avg2, epochs: 5, batchSize: 64, learningRate: 0.01, trainSize: 200, testSize: 100}
baselines: [untrained]
`;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('the CLI against a real API and worker: an EDM sweep, end to end', () => {
  let stack: Stack;
  let dir: string;

  /** `npm run -s ddae -- <args>` from the repository root, with this stack's API and nothing else of the test's environment that the CLI reads. */
  const ddae = (env: Record<string, string>, ...args: string[]): Promise<Ran> =>
    new Promise((resolve, reject) => {
      const { DDAE_API_TOKEN: _token, DATABASE_URL: _db, ARTIFACT_DIR: _artifacts, ...inherited } = process.env;
      const child = spawn('npm', ['run', '-s', 'ddae', '--', ...args], { cwd: ROOT, env: { ...inherited, DDAE_API_URL: stack.base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  /** Runs a command that must succeed; its stderr is the failure message when it does not. */
  const ok = async (env: Record<string, string>, ...args: string[]): Promise<Ran> => {
    const r = await ddae(env, ...args);
    expect(r.code === 0 ? 0 : `exit ${r.code}: ${r.stderr}`).toBe(0);
    return r;
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ddae-cli-e2e-'));
    stack = await startStack({ workers: 1, workerEnvs: [{ DDAE_BACKEND: 'native' }] });
  });

  afterAll(async () => {
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('submits with --wait, then reads the leaderboard, workers, heatmap and export of EDM results', async () => {
    const specFile = path.join(dir, 'edm.yaml');
    writeFileSync(specFile, EDM_SWEEP);
    const { token } = JSON.parse((await ok({ DATABASE_URL: stack.db.url }, 'token', 'create', '--name', 'e2e-cli', '--scope', 'submit', '--json')).stdout) as { token: string };
    const auth = { DDAE_API_TOKEN: token };

    // An EDM model probed at DDPM timesteps: refused before anything is stored, naming the field to give.
    const wrongNoise = path.join(dir, 'edm-timesteps.yaml');
    writeFileSync(wrongNoise, EDM_SWEEP.replace('sigmas: [0.5]', 'timesteps: [10]'));
    const refused = await ddae(auth, 'sweep', 'submit', wrongNoise);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^ddae: 400 /);
    expect(refused.stderr).toMatch(/^ {2}probe\.sigmas: /m);
    expect(await stack.db.prisma.sweep.count()).toBe(0);

    // --wait: the submit's answer, then (progress on stderr) the sweep as it ended.
    const waited = await ok(auth, 'sweep', 'submit', specFile, '--wait', '--json');
    const [first, last] = waited.stdout.trim().split('\n');
    const submitted = JSON.parse(first) as SweepSubmitted;
    expect(submitted).toMatchObject({ created: true, queued: true, counts: { runs: 2, probeTasks: 2 } });
    const final = JSON.parse(last) as SweepDetail;
    expect(final).toMatchObject({ id: submitted.id, status: 'SUCCEEDED' });
    expect(final.runs.map((r) => [r.key, r.status]).sort()).toEqual([['edm-tiny-s0', 'SUCCEEDED'], ['edm-tiny-untrained-s0', 'SUCCEEDED']]);
    expect(waited.stderr).toMatch(/SUCCEEDED: steps 8\/8/);
    const short = submitted.id.slice(0, 8);

    // The runs trained as EDM models (the EDM's EMA cap; its sampler drew the grid).
    const runs = await stack.db.prisma.run.findMany({ where: { sweepId: submitted.id } });
    expect(runs.map((r) => r.method)).toEqual(['edm', 'edm']);
    for (const r of runs) expect((r.hyper as { emaDecayCap: number }).emaDecayCap).toBe(0.9993);
    expect((await stack.client.samples(submitted.id)).samples.map((s) => [s.run, s.sampler])).toEqual([['edm-tiny-s0', 'heun']]);

    // Its results carry method edm, at the sigma probed, beside the untrained EDM control.
    const board = JSON.parse((await ok({}, 'leaderboard', '--sweep', short, '--method', 'edm', '--json')).stdout) as LeaderboardView;
    expect(board.filter).toMatchObject({ method: 'edm' });
    expect(board.rows.map((r) => ['runKey' in r ? r.runKey : null, r.method, r.layer, r.noiseLevel]).sort()).toEqual([
      ['edm-tiny-s0', 'edm', 'out_2', 0.5],
      ['edm-tiny-s0', 'edm', 'out_4', 0.5],
    ]);
    for (const r of board.rows) expect('accuracy' in r ? r.accuracy : 0).toBeGreaterThan(0.1);
    expect(board.baselines).toEqual([expect.objectContaining({ kind: 'untrained', method: 'edm', noiseLevel: 0.5 })]);
    expect(JSON.parse((await ok({}, 'leaderboard', '--sweep', short, '--method', 'ddpm', '--json')).stdout)).toMatchObject({ rows: [] });
    const table = (await ok({}, 'leaderboard', '--sweep', short)).stdout;
    expect(table).toMatch(/edm-tiny\s+edm\s+out_\d\s+σ=0\.5/);
    expect(table).toMatch(/untrained network .* edm-tiny out_\d σ=0\.5/);

    const exported = (await ok({}, 'export', short, '--format', 'jsonl')).stdout.trim().split('\n').map((l) => JSON.parse(l) as { method: string; run: string; untrained: boolean; noise_level: number });
    expect(exported).toHaveLength(4);
    for (const row of exported) expect(row).toMatchObject({ method: 'edm', noise_level: 0.5 });
    expect(exported.filter((r) => r.untrained).map((r) => r.run)).toEqual(['edm-tiny-untrained-s0', 'edm-tiny-untrained-s0']);

    // The worker that did it, as the CLI lists it.
    const { workers } = JSON.parse((await ok({}, 'workers', '--json')).stdout) as WorkerList;
    expect(workers.map((w) => [w.id, w.backend])).toEqual([['e2e-worker-1', 'native']]);
    expect((await ok({}, 'workers')).stdout).toMatch(/^e2e-worker-1\s+\S+\s+native\s/m);

    const png = path.join(dir, 'heatmap.png');
    const drawn = JSON.parse((await ok({}, 'heatmap', short, '--out', png, '--json')).stdout) as { width: number; height: number; cells: number; sweep: string };
    expect(drawn).toMatchObject({ cells: 4, sweep: submitted.id });
    const image = PNG.sync.read(readFileSync(png));
    expect([image.width, image.height]).toEqual([drawn.width, drawn.height]);

    expect(JSON.parse((await ok({}, 'sweep', 'list', '--status', 'succeeded', '--json')).stdout)).toMatchObject({ sweeps: [expect.objectContaining({ id: submitted.id })] });
    // Cancelling a finished sweep changes nothing: it stays SUCCEEDED.
    expect((await ok(auth, 'sweep', 'cancel', short)).stdout.trim()).toBe(`${submitted.id} SUCCEEDED`);
    expect((await stack.client.getSweep(submitted.id)).status).toBe('SUCCEEDED');
  });
});
