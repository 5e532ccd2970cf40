import * as fs from 'node:fs';
import * as path from 'node:path';
import { waitFor } from '@ddae/testing';
import { Redis } from 'ioredis';
import { isLeaderboardCellRow, QUEUES } from '@ddae/contracts';
import { REDIS_URL, startStack, type Stack } from './stack';

/**
 * A sweep small enough for CI: a tiny UNet, a few thousand real Fashion-MNIST images, enough steps
 * that training shows. The cells are where a network that learned to denoise sees what an untrained
 * one cannot (high noise, t = 250 and 400; 4x4 pooling), as in libs/compute's learning.spec: there
 * the trained network's probe must beat the untrained control's on the same cells.
 */
const TINY_SWEEP = {
  name: 'e2e-tiny',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 300, batchSize: 16, learningRate: 0.004, warmupSteps: 20, checkpointEvery: 100, trainSize: 2048, seeds: [0], samples: false },
  probe: { layers: ['out_2', 'out_4'], timesteps: [250, 400], pooling: 'avg4', epochs: 10, batchSize: 64, learningRate: 0.003, trainSize: 1000, testSize: 1000 },
  baselines: ['pixels', 'untrained'],
};
/** Mean probe accuracy over the same cells: trained minus untrained, at least. */
const TRAINED_MARGIN = 0.02;

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

    const sweep = await stack.waitForSweep(id, 540_000);
    expect(sweep.status).toBe('SUCCEEDED');

    // Checkpoints every 100 steps, the last one final; the run recorded its parameter count.
    const checkpoints = await stack.db.prisma.checkpoint.findMany({ where: { run: { untrained: false } }, orderBy: { step: 'asc' } });
    expect(checkpoints.map((c) => [c.step, c.final])).toEqual([[100, false], [200, false], [300, true]]);
    // The untrained-network control: its initial weights, probed on the same grid.
    const control = await stack.db.prisma.run.findFirstOrThrow({ where: { untrained: true }, include: { checkpoints: true } });
    expect(control).toMatchObject({ key: 'ddpm-tiny-untrained-s0', status: 'SUCCEEDED', steps: 0 });
    expect(control.checkpoints.map((c) => [c.step, c.final])).toEqual([[0, true]]);
    const run = await stack.db.prisma.run.findFirstOrThrow({ where: { untrained: false } });
    expect(run).toMatchObject({ status: 'SUCCEEDED', stepsDone: 300, attempts: 1 });
    expect(['native', 'wasm']).toContain(run.backend);
    expect(run.parameters).toBeGreaterThan(10_000);
    // pretrain.samples: false: no sample grid, stored or written (the loss-samples e2e has the default grid).
    expect(await stack.db.prisma.runSample.count()).toBe(0);
    // (Checkpoint paths are relative to the workers' ARTIFACT_DIR.)
    const runDir = path.resolve(stack.artifacts, path.dirname(checkpoints[0].path));
    expect(fs.readdirSync(runDir).filter((f) => f.startsWith('step-'))).toHaveLength(3);
    expect(fs.readdirSync(runDir).filter((f) => f.startsWith('samples-'))).toEqual([]);

    const board = await stack.client.leaderboard({ sweep: id, limit: 50 });
    const rows = board.rows.filter(isLeaderboardCellRow);
    // 2 layers x 2 noise levels, each once (no result counted twice).
    expect(rows).toHaveLength(4);
    expect(board.rows).toHaveLength(4);
    const cells = ['out_2@250', 'out_4@250', 'out_2@400', 'out_4@400'];
    expect(new Set(rows.map((r) => `${r.layer}@${r.noiseLevel}`))).toEqual(new Set(cells));
    for (const row of rows) expect(row).toMatchObject({ runKey: 'ddpm-tiny-s0', step: 300, method: 'ddpm' });
    const accuracies = rows.map((r) => r.accuracy);
    expect(accuracies).toEqual([...accuracies].sort((a, b) => b - a));
    expect(board.baselines).toEqual([expect.objectContaining({ kind: 'pixels' }), expect.objectContaining({ kind: 'untrained', method: 'ddpm' })]);
    // Ten balanced classes: chance is 0.10; raw pixels do far better.
    expect(board.baselines[0].accuracy).toBeGreaterThan(0.5);

    // Training learned: on the same cells, the trained network's probe beats the untrained
    // control's (its initial weights, same seed, same protocol) by a stated margin on average,
    // and its best cell beats the control's best (the leaderboard's untrained baseline).
    const controlCells = await stack.db.prisma.probeResult.findMany({ where: { untrained: true } });
    expect(controlCells.map((r) => `${r.layer}@${r.noiseLevel}`).sort()).toEqual([...cells].sort());
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const trainedMean = mean(accuracies);
    const controlMean = mean(controlCells.map((r) => r.accuracy));
    process.stdout.write(`sweep.e2e: probe accuracy over ${cells.join(', ')}: trained ${accuracies.map((a) => a.toFixed(3)).join(' ')} (mean ${trainedMean.toFixed(3)}), untrained ${controlCells.map((r) => `${r.layer}@${r.noiseLevel} ${r.accuracy.toFixed(3)}`).join(' ')} (mean ${controlMean.toFixed(3)})\n`);
    expect(Math.min(...controlCells.map((r) => r.accuracy))).toBeGreaterThan(0.2);
    expect(trainedMean).toBeGreaterThan(controlMean + TRAINED_MARGIN);
    const untrainedBaseline = board.baselines.find((b) => b.kind === 'untrained');
    expect(rows[0].accuracy).toBeGreaterThan(untrainedBaseline?.accuracy ?? 1);
    expect(untrainedBaseline?.accuracy).toBe(Math.max(...controlCells.map((r) => r.accuracy)));

    // The sweep's story, replayed from Postgres as Server-Sent Events.
    const stream = await (await stack.client.stream(`/api/sweeps/${id}/events`)).text();
    const types = [...stream.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    expect(types[0]).toBe('sweep.submitted');
    expect(types.at(-1)).toBe('sweep.status');
    expect(stream.trimEnd().split('\n').at(-1)).toContain('"status":"SUCCEEDED"');
    expect(types.filter((t) => t === 'run.checkpoint')).toHaveLength(4); // 100, 200, 300 and the control's 0
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
