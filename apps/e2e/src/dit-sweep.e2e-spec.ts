import { isLeaderboardCellRow } from '@ddae/contracts';
import { startStack, type Stack } from './stack';

/**
 * One small DiT (a full configuration: depth 2, width 32) through the whole pipeline, on a few
 * hundred real Fashion-MNIST images, probed at two label budgets (20 labels, class-balanced, and all 200).
 */
const DIT_SWEEP = {
  name: 'e2e-dit',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', backbone: 'dit', dit: { depth: 2, width: 32, heads: 2, patch: 4 } }],
  pretrain: { steps: 4, batchSize: 16, learningRate: 0.001, checkpointEvery: 4, trainSize: 128, seeds: [0], samples: false },
  probe: { layers: 'all', timesteps: [10], pooling: 'avg2', epochs: 5, batchSize: 64, learningRate: 0.01, trainSize: 200, testSize: 100, labels: [20, 'all'] },
  baselines: ['pixels', 'untrained'],
};

describe('a DiT sweep, end to end', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ workers: 1, workerEnvs: [{ DDAE_BACKEND: 'native' }] });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('pretrains a DiT, probes its blocks, and ranks them beside pixels and its untrained control', async () => {
    const submitted = await stack.submit(DIT_SWEEP);
    expect(submitted.created).toBe(true);
    const { id } = submitted;
    const sweep = await stack.waitForSweep(id, 900_000);
    expect(sweep.status).toBe('SUCCEEDED');

    const runs = await stack.db.prisma.run.findMany({ orderBy: { key: 'asc' } });
    expect(runs.map((r) => [r.key, r.status])).toEqual([
      ['ddpm-dit-d2w32p4-s0', 'SUCCEEDED'],
      ['ddpm-dit-d2w32p4-untrained-s0', 'SUCCEEDED'],
    ]);
    for (const r of runs) {
      expect(r.unet).toBeNull();
      expect(r.dit).toEqual({ depth: 2, width: 32, heads: 2, patch: 4, mlpRatio: 4 });
      // At 32x32x1: patch 544 + time MLP 9,280 + 2 blocks x 18,912 + final 2,640, as the worker's model reported.
      expect(r.parameters).toBe(50_288);
    }

    const board = await stack.client.leaderboard({ sweep: id, limit: '50' });
    const rows = board.rows.filter(isLeaderboardCellRow);
    expect(rows).toHaveLength(board.rows.length);
    // `layers: all` is every block of the DiT.
    expect(new Set(rows.map((r) => `${r.layer}@${r.noiseLevel}`))).toEqual(new Set(['blk_1@10', 'blk_2@10']));
    for (const row of rows) {
      expect(row).toMatchObject({ runKey: 'ddpm-dit-d2w32p4-s0', step: 4, method: 'ddpm' });
      expect(row.accuracy).toBeGreaterThan(0.2);
    }
    expect(board.baselines).toEqual([expect.objectContaining({ kind: 'pixels', labels: 'all' }), expect.objectContaining({ kind: 'untrained', labels: 'all' })]);
    expect(rows.every((r) => r.labels === 'all')).toBe(true);

    // Each budget's results exist: one probe task per (run, noise level) wrote both, from one feature pass.
    const results = await stack.db.prisma.probeResult.findMany({ where: { sweepId: id }, orderBy: [{ untrained: 'asc' }, { layer: 'asc' }, { labels: 'asc' }] });
    expect(results.map((r) => [r.untrained, r.layer, r.labels])).toEqual([
      [false, 'blk_1', 20], [false, 'blk_1', null], [false, 'blk_2', 20], [false, 'blk_2', null],
      [true, 'blk_1', 20], [true, 'blk_1', null], [true, 'blk_2', 20], [true, 'blk_2', null],
    ]);
    expect(await stack.db.prisma.probeTask.count({ where: { sweepId: id } })).toBe(2);
    // The leaderboard at 20 labels: that budget's rows and baselines alone.
    const few = await stack.client.leaderboard({ sweep: id, limit: '50', labels: '20' });
    expect(few.filter.labels).toBe(20);
    expect(few.rows.map((r) => r.labels)).toEqual([20, 20]);
    expect(few.rows.map((r) => (isLeaderboardCellRow(r) ? r.accuracy : null)).sort()).toEqual(results.filter((r) => !r.untrained && r.labels === 20).map((r) => r.accuracy).sort());
    expect(few.baselines.map((b) => [b.kind, b.labels])).toEqual([['pixels', 20], ['untrained', 20]]);
    expect((await stack.client.heatmap(id, { labels: '20' })).cells.every((c) => c.labels === 20)).toBe(true);
    expect((await stack.client.labelCurves(id)).budgets).toEqual([20, 'all']);

    const heatmap = await stack.client.heatmap(id);
    expect(JSON.stringify(heatmap)).toContain('blk_2');

    const csv = await (await fetch(`${stack.base}/api/sweeps/${id}/results.csv`)).text();
    const [header, ...lines] = csv.trim().split('\r\n');
    const backboneAt = header.split(',').indexOf('backbone');
    expect(backboneAt).toBeGreaterThanOrEqual(0);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(line.split(',')[backboneAt]).toBe('dit');
  });
});
