import { waitFor } from '@ddae/testing';
import { Redis } from 'ioredis';
import { isLeaderboardCellRow, QUEUES } from '@ddae/contracts';
import { REDIS_URL, startStack, type Stack } from './stack';

/** A sweep small enough for CI: a tiny UNet, a few hundred real Fashion-MNIST images. */
const TINY_SWEEP = {
  name: 'e2e-tiny',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 24, batchSize: 16, learningRate: 0.001, checkpointEvery: 8, trainSize: 512, seeds: [0] },
  probe: { layers: ['out_2', 'out_4'], timesteps: [10, 100], epochs: 20, batchSize: 64, learningRate: 0.01, trainSize: 600, testSize: 300 },
  baselines: ['pixels', 'untrained'],
};

describe('a sweep, end to end: REST -> queue -> worker processes -> Postgres -> leaderboard', () => {
  let stack: Stack;

  beforeAll(async () => {
    // Two workers share the one queue, as they would on two machines: one on our native kernels,
    // one on wasm, so both engines run the end-to-end path.
    stack = await startStack({ workers: 2, workerEnvs: [{ DDAE_BACKEND: 'native' }, { DDAE_BACKEND: 'wasm' }] });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('trains, probes and ranks a tiny DDPM on real Fashion-MNIST', async () => {
    const submitted = await stack.submit(TINY_SWEEP);
    expect(submitted).toMatchObject({ created: true, queued: true });
    const { id } = submitted;

    const live = await waitFor('both workers to register', async () => {
      const body = await stack.client.workers();
      return body.workers.length === 2 ? body.workers : undefined;
    }, { timeoutMs: 60_000, describe: async () => stack.logs() });
    expect(live.map((w) => w.backend).sort()).toEqual(['native', 'wasm']);

    const sweep = await stack.waitForSweep(id, 420_000);
    expect(sweep.status).toBe('SUCCEEDED');

    // Checkpoints every 8 steps, the last one final; the run recorded its parameter count.
    const checkpoints = await stack.db.prisma.checkpoint.findMany({ where: { run: { untrained: false } }, orderBy: { step: 'asc' } });
    expect(checkpoints.map((c) => [c.step, c.final])).toEqual([[8, false], [16, false], [24, true]]);
    // The untrained-network control: its initial weights, probed on the same grid.
    const control = await stack.db.prisma.run.findFirstOrThrow({ where: { untrained: true }, include: { checkpoints: true } });
    expect(control).toMatchObject({ key: 'ddpm-tiny-untrained-s0', status: 'SUCCEEDED', steps: 0 });
    expect(control.checkpoints.map((c) => [c.step, c.final])).toEqual([[0, true]]);
    const run = await stack.db.prisma.run.findFirstOrThrow({ where: { untrained: false } });
    expect(run).toMatchObject({ status: 'SUCCEEDED', stepsDone: 24, attempts: 1 });
    expect(['native', 'wasm']).toContain(run.backend);
    expect(run.parameters).toBeGreaterThan(10_000);

    const board = await stack.client.leaderboard({ sweep: id, limit: 50 });
    const rows = board.rows.filter(isLeaderboardCellRow);
    // 2 layers x 2 noise levels, each once (no result counted twice).
    expect(rows).toHaveLength(4);
    expect(board.rows).toHaveLength(4);
    expect(new Set(rows.map((r) => `${r.layer}@${r.noiseLevel}`))).toEqual(new Set(['out_2@10', 'out_4@10', 'out_2@100', 'out_4@100']));
    for (const row of rows) {
      expect(row).toMatchObject({ runKey: 'ddpm-tiny-s0', step: 24, method: 'ddpm' });
      // Ten balanced classes: chance is 0.10. Real features of real images do better.
      expect(row.accuracy).toBeGreaterThan(0.2);
    }
    const accuracies = rows.map((r) => r.accuracy);
    expect(accuracies).toEqual([...accuracies].sort((a, b) => b - a));
    expect(board.baselines).toEqual([expect.objectContaining({ kind: 'pixels' }), expect.objectContaining({ kind: 'untrained', method: 'ddpm' })]);
    expect(board.baselines[0].accuracy).toBeGreaterThan(0.5);
    expect(board.baselines[1].accuracy).toBeGreaterThan(0.2);
    expect(await stack.db.prisma.probeResult.count({ where: { untrained: true } })).toBe(4);

    // The sweep's story, replayed from Postgres as Server-Sent Events.
    const stream = await (await stack.client.stream(`/api/sweeps/${id}/events`)).text();
    const types = [...stream.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    expect(types[0]).toBe('sweep.submitted');
    expect(types.at(-1)).toBe('sweep.status');
    expect(stream.trimEnd().split('\n').at(-1)).toContain('"status":"SUCCEEDED"');
    expect(types.filter((t) => t === 'run.checkpoint')).toHaveLength(4); // 8, 16, 24 and the control's 0
    expect(types.filter((t) => t === 'run.succeeded')).toHaveLength(2);
    expect(types.filter((t) => t === 'probe.succeeded')).toHaveLength(4);
    expect(types).toContain('baseline.succeeded');

    // No secret in any log: not the API token, not the database credentials.
    expect(stack.logs()).not.toContain(stack.token);
    // Job payloads in Redis are ids and a schema version, nothing else.
    const redis = new Redis(REDIS_URL);
    try {
      const payload = JSON.parse((await redis.hget(`${stack.prefix}:${QUEUES.compute}:pretrain-${run.id}`, 'data')) ?? 'null');
      expect(payload).toEqual({ v: 1, runId: run.id });
    } finally {
      redis.disconnect();
    }
  });
});
