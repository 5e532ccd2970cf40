import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isLeaderboardCellRow, isLeaderboardConfigRow } from '@ddae/contracts';
import { startStack, type Stack } from './stack';

/** The PyTorch twin's tiny UNet, trained a few steps in PyTorch (libs/diffusion/fixtures/export_fixture.py). */
const FIXTURE = path.resolve(__dirname, '../../../libs/diffusion/fixtures/twin-unet-tiny.safetensors');
const SHA256 = createHash('sha256').update(readFileSync(FIXTURE)).digest('hex');

const importSweep = (name: string, checkpoint: { path: string; sha256?: string }) => ({
  name,
  dataset: 'fashion-mnist',
  models: [{ name: 'twin-tiny', method: 'ddpm', unet: 'tiny', checkpoint }],
  // Required by the schema; an imported model is never trained.
  pretrain: { steps: 1 },
  probe: { layers: ['out_3', 'out_4'], timesteps: [10], pooling: 'avg2', epochs: 3, batchSize: 64, learningRate: 0.01, trainSize: 200, testSize: 100 },
  baselines: ['pixels'],
});

describe('a sweep of a model pretrained elsewhere, end to end', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ workers: 1, workerEnvs: [{ DDAE_BACKEND: 'native' }] });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('imports the safetensors file instead of training, probes it, and its results carry the provenance', async () => {
    const { id } = await stack.submit(importSweep('e2e-import', { path: FIXTURE, sha256: SHA256 }));
    const sweep = await stack.waitForSweep(id, 600_000);
    expect(sweep.status).toBe('SUCCEEDED');

    const [run] = await stack.db.prisma.run.findMany({ where: { sweepId: id } });
    expect(run).toMatchObject({ key: 'twin-tiny-s0', status: 'SUCCEEDED', steps: 0, stepsDone: 0, sourcePath: FIXTURE, sourceSha256: SHA256, parameters: 41_609 });
    const checkpoints = await stack.db.prisma.checkpoint.findMany({ where: { runId: run.id } });
    expect(checkpoints.map((c) => [c.step, c.final])).toEqual([[0, true]]);
    // Never trained: no loss curve.
    expect(await stack.db.prisma.trainLoss.count({ where: { runId: run.id } })).toBe(0);

    const board = await stack.client.leaderboard({ sweep: id, limit: '50' });
    const rows = board.rows.filter(isLeaderboardCellRow);
    expect(new Set(rows.map((r) => `${r.layer}@${r.noiseLevel}`))).toEqual(new Set(['out_3@10', 'out_4@10']));
    for (const row of rows) {
      expect(row).toMatchObject({ runKey: 'twin-tiny-s0', step: 0, source: { path: FIXTURE, sha256: SHA256 } });
      // The twin's weights hold features: well above chance (0.1) on 100 test images.
      expect(row.accuracy).toBeGreaterThan(0.3);
    }
    const configs = (await stack.client.leaderboard({ sweep: id, per: 'config' })).rows.filter(isLeaderboardConfigRow);
    expect(configs.length).toBe(2);
    for (const row of configs) expect(row.source).toEqual({ path: FIXTURE, sha256: SHA256 });

    // The export: its last two columns (the UNet's JSON, quoted, holds commas: read from the end).
    const csv = await (await fetch(`${stack.base}/api/sweeps/${id}/results.csv`)).text();
    const [header, ...lines] = csv.trim().split('\r\n');
    expect(header.split(',').slice(-2)).toEqual(['source_path', 'source_sha256']);
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.split(',').slice(-2)).toEqual([FIXTURE, SHA256]);
    const jsonl = await (await fetch(`${stack.base}/api/sweeps/${id}/results.jsonl`)).text();
    for (const line of jsonl.trim().split('\n')) expect(JSON.parse(line)).toMatchObject({ steps: 0, source_path: FIXTURE, source_sha256: SHA256 });
    // The sweep's own view of its run.
    expect(sweep.runs.map((r) => r.source)).toEqual([{ path: FIXTURE, sha256: SHA256 }]);
    // The CLI's leaderboard names the imported model's source under the ranking.
    const cli = spawnSync(process.execPath, ['-r', '@swc-node/register', 'apps/cli/src/main.ts', 'leaderboard', '--sweep', id, '--api', stack.base], { encoding: 'utf8' });
    expect(cli.status === 0 ? 0 : `exit ${cli.status}: ${cli.stderr}`).toBe(0);
    expect(cli.stdout).toContain('imported models (pretrained elsewhere, not trained by the sweep)');
    expect(cli.stdout).toMatch(new RegExp(`twin-tiny +${FIXTURE.replace(/[.]/g, '\\.')} +${SHA256}`));
  });

  it('runs the acceptance sweep of issue 14: one pretrained DiT, one imported checkpoint, three label budgets', async () => {
    const { id } = await stack.submit({
      name: 'e2e-dit-import-budgets',
      dataset: 'fashion-mnist',
      models: [
        { name: 'dit', method: 'ddpm', backbone: 'dit', dit: { depth: 2, width: 32, heads: 2, patch: 4 } },
        { name: 'twin-tiny', method: 'ddpm', unet: 'tiny', checkpoint: { path: FIXTURE, sha256: SHA256 } },
      ],
      pretrain: { steps: 4, batchSize: 16, learningRate: 0.001, checkpointEvery: 4, trainSize: 128, seeds: [0], samples: false },
      probe: { layers: 'all', timesteps: [10], pooling: 'avg2', epochs: 3, batchSize: 64, learningRate: 0.01, trainSize: 200, testSize: 100, labels: [20, 50, 'all'] },
      baselines: ['pixels'],
    });
    const sweep = await stack.waitForSweep(id, 900_000);
    expect(sweep.status).toBe('SUCCEEDED');
    const runs = await stack.db.prisma.run.findMany({ where: { sweepId: id }, orderBy: { key: 'asc' } });
    expect(runs.map((r) => [r.key, r.status, r.steps, r.sourceSha256])).toEqual([
      ['dit-s0', 'SUCCEEDED', 4, null],
      ['twin-tiny-s0', 'SUCCEEDED', 0, SHA256],
    ]);
    // Every block of each model at each budget: the DiT's blk_1..2, the tiny UNet's out_1..4.
    const results = await stack.db.prisma.probeResult.findMany({ where: { sweepId: id } });
    const cells = new Set(results.map((r) => `${r.layer}@${r.labels ?? 'all'}`));
    for (const labels of ['20', '50', 'all']) {
      for (const layer of ['blk_1', 'blk_2', 'out_1', 'out_2', 'out_3', 'out_4']) expect(cells.has(`${layer}@${labels}`)).toBe(true);
    }
    expect(results).toHaveLength(3 * 6);
    // The leaderboard ranks one budget at a time, with the baseline at that budget.
    for (const labels of ['20', '50', 'all'] as const) {
      const board = await stack.client.leaderboard({ sweep: id, labels, limit: '50' });
      const rows = board.rows.filter(isLeaderboardCellRow);
      expect(rows).toHaveLength(6);
      expect(new Set(rows.map((r) => String(r.labels)))).toEqual(new Set([labels]));
      expect(board.baselines).toEqual([expect.objectContaining({ kind: 'pixels', labels: labels === 'all' ? 'all' : Number(labels) })]);
      for (const r of rows) if (r.runKey === 'twin-tiny-s0') expect(r.source).toEqual({ path: FIXTURE, sha256: SHA256 });
    }
  });

  it('reads a relative path under the workers\' ARTIFACT_DIR and, given no sha256, records the one it found', async () => {
    mkdirSync(path.join(stack.artifacts, 'imports'));
    copyFileSync(FIXTURE, path.join(stack.artifacts, 'imports', 'twin.safetensors'));
    const { id } = await stack.submit(importSweep('e2e-import-relative', { path: 'imports/twin.safetensors' }));
    const sweep = await stack.waitForSweep(id, 600_000);
    expect(sweep.status).toBe('SUCCEEDED');
    expect(sweep.runs.map((r) => r.source)).toEqual([{ path: 'imports/twin.safetensors', sha256: SHA256 }]);
  });

  it('fails the run at once, naming both hashes, when the file is not the one the spec names', async () => {
    const wrong = 'ab'.repeat(32);
    const { id } = await stack.submit(importSweep('e2e-import-wrong-hash', { path: FIXTURE, sha256: wrong }));
    const sweep = await stack.waitForSweep(id, 300_000);
    expect(sweep.status).toBe('FAILED');
    const [run] = await stack.db.prisma.run.findMany({ where: { sweepId: id } });
    expect(run.status).toBe('FAILED');
    // Not retryable: the file will not change its hash.
    expect(run.attempts).toBe(1);
    expect(run.error).toContain(`sha256 ${SHA256}, expected ${wrong}`);
    expect(await stack.db.prisma.checkpoint.count({ where: { runId: run.id } })).toBe(0);
  });
});
