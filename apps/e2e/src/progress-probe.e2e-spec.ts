import { spawnSync } from 'node:child_process';
import { waitFor } from '@ddae/testing';
import { childPids, startStack, type Stack } from './stack';

/**
 * Probing during pretraining: a probe every 4 steps on a small grid (2 layers at t = 10), and an
 * early stop that cannot miss (no probe gains a whole point of accuracy, patience 2): the run
 * stops at its third probe, step 12 of 16.
 */
const SWEEP = {
  name: 'e2e-progress-probe',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: {
    steps: 16,
    batchSize: 8,
    learningRate: 0.001,
    checkpointEvery: 4,
    trainSize: 256,
    seeds: [0],
    progressProbe: { every: 4, layers: ['out_2', 'out_4'], trainSize: 200, testSize: 100, epochs: 2, earlyStop: { patience: 2, minDelta: 1 } },
  },
  probe: { layers: ['out_4'], timesteps: [10], epochs: 5, batchSize: 64, learningRate: 0.01, trainSize: 200, testSize: 100 },
  baselines: [],
};

describe('probing during pretraining, end to end', () => {
  let stack: Stack | undefined;

  afterAll(async () => {
    await stack?.stop();
  });

  it('stores accuracy against step once per point across a kill -9 of the compute child, and records the early stop', async () => {
    const s = (stack = await startStack({ workers: 1 }));
    const submitted = await s.submit(SWEEP);
    expect(submitted).toMatchObject({ created: true, queued: true });
    const { id } = submitted;

    // Kill the child once the first point is stored, while it trains or probes on.
    await waitFor('the first progress probe', async () => ((await s.db.prisma.progressProbe.count()) > 0 ? true : undefined), { timeoutMs: 180_000, intervalMs: 100, describe: async () => s.logs() });
    const [child] = childPids(s.workers[0].child.pid as number);
    expect(child).toBeDefined();
    process.kill(child, 'SIGKILL');

    expect((await s.waitForSweep(id, 300_000)).status).toBe('SUCCEEDED');

    // The retried attempt resumed and replayed its points: each (step, layer, noise) exactly once,
    // none lost, and the plateau stopped the run at step 12 of 16.
    const run = await s.db.prisma.run.findFirstOrThrow({ include: { checkpoints: { orderBy: { step: 'asc' } } } });
    expect(run).toMatchObject({ status: 'SUCCEEDED', attempts: 2, steps: 16, stepsDone: 12, stoppedEarlyAt: 12 });
    expect(run.checkpoints.map((c) => [c.step, c.final])).toEqual([[4, false], [8, false], [12, true]]);
    const rows = await s.db.prisma.progressProbe.findMany({ orderBy: [{ step: 'asc' }, { layer: 'asc' }] });
    expect(rows.map((r) => [r.step, r.layer, r.noiseLevel])).toEqual([
      [4, 'out_2', 10], [4, 'out_4', 10],
      [8, 'out_2', 10], [8, 'out_4', 10],
      [12, 'out_2', 10], [12, 'out_4', 10],
    ]);
    for (const r of rows) {
      expect(r.protocolKey).toContain('probe=fast');
      // Ten balanced classes: chance is 0.10.
      expect(r.accuracy).toBeGreaterThan(0.1);
    }
    // The sweep's probe tasks ran on the plateau's checkpoint.
    const results = await s.db.prisma.probeResult.findMany({ include: { checkpoint: true } });
    expect(results.map((r) => [r.layer, r.noiseLevel, r.checkpoint.step])).toEqual([['out_4', 10, 12]]);

    const progress = await s.client.progress(id);
    expect(progress.runs).toHaveLength(1);
    expect(progress.runs[0]).toMatchObject({ run: 'ddpm-tiny-s0', every: 4, stoppedEarlyAt: 12 });
    expect(progress.runs[0].points.map((p) => [p.step, p.cells.length])).toEqual([[4, 2], [8, 2], [12, 2]]);
    for (const p of progress.runs[0].points) expect(p.accuracy).toBe(Math.max(...p.cells.map((c) => c.accuracy)));

    // The story as events: one per point (the replay added none), then the early stop.
    const stream = await (await s.client.stream(`/api/sweeps/${id}/events`)).text();
    const types = [...stream.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    expect(types.filter((t) => t === 'run.progress-probe')).toHaveLength(3);
    expect(types.filter((t) => t === 'run.stopped-early')).toHaveLength(1);
    expect(types.indexOf('run.stopped-early')).toBeLessThan(types.indexOf('run.succeeded'));

    // The CLI reads the same view.
    const cli = (args: string[]) => {
      const r = spawnSync(process.execPath, ['-r', '@swc-node/register', 'apps/cli/src/main.ts', 'progress', id, '--api', s.base, ...args], { encoding: 'utf8' });
      // Its stderr is the failure message when it fails.
      expect(r.status === 0 ? 0 : `exit ${r.status}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    expect(JSON.parse(cli(['--json']))).toEqual(progress);
    const text = cli([]);
    expect(text).toContain('ddpm-tiny-s0  [SUCCEEDED]  steps 12/16  probed every 4 steps  stopped early at step 12 of 16');
    expect(text).toMatch(/^ {2}12 {2}\d+\.\d\d/m);
  });
});
