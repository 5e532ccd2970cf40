import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDatabase, deleteQueueKeys, freePort, startTsProcess, uniqueQueuePrefix, waitFor, type ManagedProcess, type TestDatabase } from '@ddae/testing';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A sweep small enough for CI: a tiny UNet, a few hundred real Fashion-MNIST images. */
const TINY_SWEEP = {
  name: 'e2e-tiny',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 24, batchSize: 16, learningRate: 0.001, checkpointEvery: 8, trainSize: 512, seeds: [0] },
  probe: { layers: ['out_2', 'out_4'], timesteps: [10, 100], epochs: 20, batchSize: 64, learningRate: 0.01, trainSize: 600, testSize: 300 },
  baselines: ['pixels'],
};

interface LeaderboardBody {
  rows: { accuracy: number; layer: string; noiseLevel: number; runKey: string; step: number; method: string }[];
  baselines: { kind: string; accuracy: number }[];
}

describe('a sweep, end to end: REST -> queue -> worker processes -> Postgres -> leaderboard', () => {
  let db: TestDatabase;
  let artifacts: string;
  let prefix: string;
  let api: ManagedProcess;
  let workers: ManagedProcess[] = [];
  let base: string;

  const logs = () => [api, ...workers].map((p) => p?.output().slice(-3000)).join('\n---\n');

  beforeAll(async () => {
    db = await createTestDatabase();
    artifacts = await mkdtemp(path.join(tmpdir(), 'ddae-e2e-'));
    prefix = uniqueQueuePrefix('e2e');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const common = { DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, ARTIFACT_DIR: artifacts, LOG_LEVEL: 'log' };
    api = startTsProcess('apps/api/src/main.ts', { ...common, PORT: String(port) });
    // Two workers share the one queue, as they would on two machines.
    workers = [1, 2].map((i) => startTsProcess('apps/worker/src/main.ts', { ...common, WORKER_ID: `e2e-worker-${i}`, HEARTBEAT_MS: '1000', DDAE_BACKEND: 'wasm' }, `worker-${i}`));
    await waitFor('the API to answer /health', async () => ((await fetch(`${base}/health`).catch(() => null))?.ok ? true : undefined), { timeoutMs: 60_000, describe: async () => logs() });
  });

  afterAll(async () => {
    await Promise.all([api, ...workers].filter(Boolean).map((p) => p.stop()));
    await deleteQueueKeys(REDIS_URL, prefix);
    await db?.drop();
    if (artifacts) await rm(artifacts, { recursive: true, force: true });
  });

  it('trains, probes and ranks a tiny DDPM on real Fashion-MNIST', async () => {
    const submitted = await fetch(`${base}/api/sweeps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(TINY_SWEEP) });
    expect(submitted.status).toBe(201);
    const { id } = (await submitted.json()) as { id: string };

    const live = await waitFor('both workers to register', async () => {
      const body = (await (await fetch(`${base}/api/workers`)).json()) as { workers: { id: string; backend: string }[] };
      return body.workers.length === 2 ? body.workers : undefined;
    }, { timeoutMs: 60_000, describe: async () => logs() });
    expect(live.map((w) => w.backend)).toEqual(['wasm', 'wasm']);

    const sweep = await waitFor(`sweep ${id} to finish`, async () => {
      const body = (await (await fetch(`${base}/api/sweeps/${id}`)).json()) as { status: string };
      return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(body.status) ? body : undefined;
    }, { timeoutMs: 420_000, intervalMs: 1_000, describe: async () => `${JSON.stringify(await (await fetch(`${base}/api/sweeps/${id}`)).json())}\n${logs()}` });
    expect(sweep.status).toBe('SUCCEEDED');

    // Checkpoints every 8 steps, the last one final; the run recorded its parameter count.
    const checkpoints = await db.prisma.checkpoint.findMany({ orderBy: { step: 'asc' } });
    expect(checkpoints.map((c) => [c.step, c.final])).toEqual([[8, false], [16, false], [24, true]]);
    const run = await db.prisma.run.findFirstOrThrow();
    expect(run).toMatchObject({ status: 'SUCCEEDED', stepsDone: 24, backend: 'wasm' });
    expect(run.parameters).toBeGreaterThan(10_000);

    const board = (await (await fetch(`${base}/api/leaderboard?sweep=${id}&limit=50`)).json()) as LeaderboardBody;
    // 2 layers x 2 noise levels, each once (no result counted twice).
    expect(board.rows).toHaveLength(4);
    expect(new Set(board.rows.map((r) => `${r.layer}@${r.noiseLevel}`))).toEqual(new Set(['out_2@10', 'out_4@10', 'out_2@100', 'out_4@100']));
    for (const row of board.rows) {
      expect(row).toMatchObject({ runKey: 'ddpm-tiny-s0', step: 24, method: 'ddpm' });
      // Ten balanced classes: chance is 0.10. Real features of real images do better.
      expect(row.accuracy).toBeGreaterThan(0.2);
    }
    const accuracies = board.rows.map((r) => r.accuracy);
    expect(accuracies).toEqual([...accuracies].sort((a, b) => b - a));
    expect(board.baselines).toEqual([expect.objectContaining({ kind: 'pixels' })]);
    expect(board.baselines[0].accuracy).toBeGreaterThan(0.5);
  });
});
