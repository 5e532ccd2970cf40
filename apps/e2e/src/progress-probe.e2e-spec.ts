import { spawnSync } from 'node:child_process';
import { waitFor } from '@ddae/testing';
import { childPids, startStack, type Stack } from './stack';

/**
 * Probing during pretraining: a tiny DDPM trained as sweep.e2e's is (enough steps to learn), a
 * probe every 100 steps on cells where learning shows (out_2 and out_4 at t = 250, 4x4 pooling),
 * and an early stop that cannot miss (no probe gains a whole point of accuracy, patience 1): the
 * run stops at its second probe, step 200 of 300. Its untrained control is probed on the same
 * cells under the same protocol, so the progress probe can be held against it.
 */
const CELLS = { layers: ['out_2', 'out_4'], timesteps: [250] };
const SWEEP = {
  name: 'e2e-progress-probe',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: {
    steps: 300,
    batchSize: 16,
    learningRate: 0.004,
    warmupSteps: 20,
    checkpointEvery: 100,
    trainSize: 2048,
    seeds: [0],
    samples: false,
    progressProbe: { every: 100, ...CELLS, trainSize: 1000, testSize: 1000, epochs: 10, earlyStop: { patience: 1, minDelta: 1 } },
  },
  probe: { ...CELLS, pooling: 'avg4', epochs: 10, trainSize: 1000, testSize: 1000 },
  baselines: ['untrained'],
};
/**
 * Training learned, by these margins at the last point (step 200) over the untrained control:
 * best cell against best cell, and the mean over both cells. Measured with the CLI's inline
 * pretrain and probe on the native kernels (same settings, 2026-11-30), seeds 0, 1, 2: best
 * 0.619 / 0.633 / 0.634 against 0.575 / 0.508 / 0.582 (+0.044, +0.125, +0.052); mean 0.567 /
 * 0.577 / 0.599 against 0.530 / 0.501 / 0.578 (+0.037, +0.075, +0.021). The run is seed 0; its
 * numbers are reproduced exactly across the kill and resume.
 */
const LEARNED_MARGIN = { best: 0.03, mean: 0.01 };

describe('probing during pretraining, end to end', () => {
  let stack: Stack | undefined;

  afterAll(async () => {
    await stack?.stop();
  });

  it('stores accuracy against step once per point across a kill -9 of the compute child, and records the early stop', async () => {
    const s = (stack = await startStack({ workers: 1, workerEnvs: [{ DDAE_BACKEND: 'native' }] }));
    const submitted = await s.submit(SWEEP);
    expect(submitted).toMatchObject({ created: true, queued: true });
    const { id } = submitted;

    // Kill the child once the first point is stored, while it trains or probes on.
    await waitFor('the first progress probe', async () => ((await s.db.prisma.progressProbe.count()) > 0 ? true : undefined), { timeoutMs: 400_000, intervalMs: 100, describe: async () => s.logs() });
    const [child] = childPids(s.workers[0].child.pid as number);
    expect(child).toBeDefined();
    process.kill(child, 'SIGKILL');

    expect((await s.waitForSweep(id, 500_000)).status).toBe('SUCCEEDED');

    // The retried attempt resumed and replayed its points: each (step, layer, noise) exactly once,
    // none lost, and the plateau stopped the run at step 200 of 300.
    const run = await s.db.prisma.run.findFirstOrThrow({ where: { untrained: false }, include: { checkpoints: { orderBy: { step: 'asc' } } } });
    expect(run).toMatchObject({ status: 'SUCCEEDED', attempts: 2, steps: 300, stepsDone: 200, stoppedEarlyAt: 200 });
    expect(run.checkpoints.map((c) => [c.step, c.final])).toEqual([[100, false], [200, true]]);
    const rows = await s.db.prisma.progressProbe.findMany({ orderBy: [{ step: 'asc' }, { noiseLevel: 'asc' }, { layer: 'asc' }] });
    const cells = [[250, 'out_2'], [250, 'out_4']] as const;
    expect(rows.map((r) => [r.runId, r.step, r.noiseLevel, r.layer])).toEqual([100, 200].flatMap((step) => cells.map(([t, layer]) => [run.id, step, t, layer])));
    for (const r of rows) {
      expect(r.protocolKey).toContain('probe=fast');
      // Ten balanced classes: chance is 0.10.
      expect(r.accuracy).toBeGreaterThan(0.1);
    }
    // The sweep's probe tasks ran on the plateau's checkpoint.
    const results = await s.db.prisma.probeResult.findMany({ where: { untrained: false }, include: { checkpoint: true }, orderBy: [{ noiseLevel: 'asc' }, { layer: 'asc' }] });
    expect(results.map((r) => [r.noiseLevel, r.layer, r.checkpoint.step])).toEqual(cells.map(([t, layer]) => [t, layer, 200]));

    // Training learned: at its last point the progress probe beats the untrained control (the
    // same network at initialisation, probed on the same cells under the same protocol).
    const control = await s.db.prisma.probeResult.findMany({ where: { untrained: true }, orderBy: [{ noiseLevel: 'asc' }, { layer: 'asc' }] });
    expect(control.map((r) => [r.noiseLevel, r.layer])).toEqual(cells.map(([t, layer]) => [t, layer]));
    expect(new Set([...rows, ...control].map((r) => r.protocolKey)).size).toBe(1);
    const mean = (xs: { accuracy: number }[]) => xs.reduce((a, x) => a + x.accuracy, 0) / xs.length;
    const best = (xs: { accuracy: number }[]) => Math.max(...xs.map((x) => x.accuracy));
    const last = rows.filter((r) => r.step === 200);
    process.stdout.write(`progress-probe.e2e: probe accuracy (best cell, mean of both) by step: ${[100, 200].map((step) => rows.filter((r) => r.step === step)).map((p) => `${p[0].step} ${best(p).toFixed(3)} ${mean(p).toFixed(3)}`).join(', ')}; untrained control ${best(control).toFixed(3)} ${mean(control).toFixed(3)}\n`);
    expect(best(last)).toBeGreaterThan(best(control) + LEARNED_MARGIN.best);
    expect(mean(last)).toBeGreaterThan(mean(control) + LEARNED_MARGIN.mean);

    const progress = await s.client.progress(id);
    expect(progress.runs).toHaveLength(1);
    expect(progress.runs[0]).toMatchObject({ run: 'ddpm-tiny-s0', every: 100, stoppedEarlyAt: 200 });
    expect(progress.runs[0].points.map((p) => [p.step, p.cells.length])).toEqual([[100, 2], [200, 2]]);
    for (const p of progress.runs[0].points) expect(p.accuracy).toBe(Math.max(...p.cells.map((c) => c.accuracy)));

    // The story as events: one per point (the replay added none), then the early stop, then the run's success.
    const events = (await s.db.prisma.sweepEvent.findMany({ where: { sweepId: id }, orderBy: { id: 'asc' } })).filter((e) => (e.data as { run?: string }).run === 'ddpm-tiny-s0');
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'run.progress-probe')).toHaveLength(2);
    expect(types.filter((t) => t === 'run.stopped-early')).toHaveLength(1);
    expect(types.indexOf('run.stopped-early')).toBeLessThan(types.indexOf('run.succeeded'));
    const stream = await (await s.client.stream(`/api/sweeps/${id}/events`)).text();
    expect([...stream.matchAll(/^event: run\.progress-probe$/gm)]).toHaveLength(2);

    // The CLI reads the same view.
    const cli = (args: string[]) => {
      const r = spawnSync(process.execPath, ['-r', '@swc-node/register', 'apps/cli/src/main.ts', 'progress', id, '--api', s.base, ...args], { encoding: 'utf8' });
      // Its stderr is the failure message when it fails.
      expect(r.status === 0 ? 0 : `exit ${r.status}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    expect(JSON.parse(cli(['--json']))).toEqual(progress);
    const text = cli([]);
    expect(text).toContain('ddpm-tiny-s0  [SUCCEEDED]  steps 200/300  probed every 100 steps  stopped early at step 200 of 300');
    expect(text).toMatch(/^ ?200 {2}\d+\.\d\d/m);
  });
});
