import { QUEUES, sweepSpecSchema } from '@ddae/contracts';
import type { ProbeTask } from '@ddae/db';
import { ComputeQueue } from '@ddae/queue';
import { deleteQueueKeys, queuedJobIds, useServicesHarness } from '@ddae/testing';
import { planSweep } from './plan';
import { createSweepServices } from './services';

const GRID = [1, 2, 3, 5, 8, 11, 15, 20, 25, 30, 40, 50, 65, 80, 100, 125, 150, 200, 250, 300];

/** A single-peaked accuracy against noise level, peaking at t = 11 (a little lower for seed 1). */
const accuracyAt = (t: number, seed: number) => 0.9 - 0.05 * Math.abs(Math.log(t / 11)) - 0.01 * seed;

describe('adaptive noise search and seed statistics (real Postgres and Redis)', () => {
  const h = useServicesHarness('search', { queue: (redisUrl, prefix) => new ComputeQueue({ redisUrl, prefix }), services: createSweepServices });

  const spec = sweepSpecSchema.parse({
    name: 'search',
    dataset: 'fashion-mnist',
    models: [{ method: 'ddpm', unet: 'tiny' }],
    pretrain: { steps: 10, seeds: [0, 1] },
    probe: { timesteps: GRID, layers: ['out_1', 'out_2'], noiseSearch: { search: 'adaptive', coarse: 4 } },
    baselines: [],
  });

  const jobs = () => queuedJobIds(h.redisUrl, h.prefix, QUEUES.compute);

  async function finishRun(runId: string, sweepId: string): Promise<string> {
    await h.services.runs.claim(runId, { workerId: 'w', backend: 'wasm' });
    await h.services.runs.complete(runId, { step: 10, path: `runs/${runId}/step-10`, sha256: `sha-${runId}` });
    await h.services.orchestrator.runSucceeded(runId, sweepId);
    return (await h.services.runs.finalCheckpoint(runId))!.id;
  }

  /** What a worker does with a probe job: claim, measure, store through the orchestrator. */
  async function probe(task: ProbeTask, checkpointId: string, seed: number): Promise<{ next: string[] }> {
    const claimed = await h.services.probes.claim(task.id, { workerId: 'w' });
    if (!claimed || claimed === 'throttled') throw new Error(`could not claim ${task.id}`);
    const results = claimed.layers.map((layer, i) => ({ layer, accuracy: accuracyAt(claimed.noiseLevel, seed) - 0.02 * i, featureDim: 8 }));
    return h.services.orchestrator.probeSucceeded(claimed, { checkpointId, dataset: 'fashion-mnist', method: 'ddpm', untrained: false, backend: 'wasm', workerId: 'w' }, results);
  }

  const queuedTasks = (runId: string) => h.db.prisma.probeTask.findMany({ where: { runId, status: 'QUEUED' }, orderBy: { noiseLevel: 'asc' } });

  it('probes coarse levels first, then refines around the best until adjacent: the grid best with under half the jobs', async () => {
    const plan = planSweep(spec);
    expect(plan.probeTasks.filter((t) => t.runKey === 'ddpm-tiny-s0').map((t) => t.noiseLevel)).toEqual([1, 15, 80, 300]);
    const created = await h.services.orchestrator.submit(spec, plan);
    const [runId] = created.runIds;
    const checkpointId = await finishRun(runId, created.sweep.id);
    const rounds: number[][] = [];
    for (let tasks = await queuedTasks(runId); tasks.length; tasks = await queuedTasks(runId)) {
      rounds.push(tasks.map((t) => t.noiseLevel));
      // Every task of the round is in the h.queue before it runs.
      expect(await jobs()).toEqual(expect.arrayContaining(tasks.map((t) => `probe-${t.id}`)));
      for (const t of tasks) await probe(t, checkpointId, 0);
      if ((await queuedTasks(runId)).length) expect((await h.services.sweeps.findById(created.sweep.id))?.status).toBe('RUNNING');
    }
    expect(rounds[0]).toEqual([1, 15, 80, 300]);
    const probed = await h.db.prisma.probeTask.findMany({ where: { runId } });
    expect(probed.length).toBeLessThanOrEqual(GRID.length / 2);
    const best = await h.db.prisma.probeResult.findFirstOrThrow({ where: { runId }, orderBy: { accuracy: 'desc' } });
    expect(best.noiseLevel).toBe(11);
    // Neighbours of the best in the grid were probed: the peak is bracketed.
    expect(probed.map((p) => p.noiseLevel)).toEqual(expect.arrayContaining([8, 11, 15]));
    const events = await h.db.prisma.sweepEvent.findMany({ where: { sweepId: created.sweep.id, type: 'probe.search' }, orderBy: { id: 'asc' } });
    expect(events.at(-1)?.data).toMatchObject({ runId, done: true, best: { noiseLevel: 11 } });
    // Every stored result records its protocols.
    expect(best).toMatchObject({ noiseProtocol: 'fixed', probeProtocol: 'fast', pooling: 'gap' });
  });

  it('with label budgets, searches on the largest budget: every budget stored at each probed level', async () => {
    const budgeted = sweepSpecSchema.parse({ ...spec, probe: { ...spec.probe, trainSize: 1000, labels: [20, 200] } });
    const created = await h.services.orchestrator.submit(budgeted, planSweep(budgeted));
    const [runId] = created.runIds;
    const checkpointId = await finishRun(runId, created.sweep.id);
    expect((await queuedTasks(runId)).map((t) => t.labels)).toEqual([[20, 200], [20, 200], [20, 200], [20, 200]]);
    for (let tasks = await queuedTasks(runId); tasks.length; tasks = await queuedTasks(runId)) {
      for (const t of tasks) {
        const claimed = await h.services.probes.claim(t.id, { workerId: 'w' });
        if (!claimed || claimed === 'throttled') throw new Error(`could not claim ${t.id}`);
        // 200 labels peak at t = 11; 20 labels (a decoy the search must not follow) rise towards t = 300.
        const results = [20, 200].flatMap((labels) => claimed.layers.map((layer) => ({ layer, labels, accuracy: labels === 200 ? accuracyAt(claimed.noiseLevel, 0) : 0.5 + claimed.noiseLevel / 1000, featureDim: 8 })));
        await h.services.orchestrator.probeSucceeded(claimed, { checkpointId, dataset: 'fashion-mnist', method: 'ddpm', untrained: false, backend: 'wasm', workerId: 'w' }, results);
      }
    }
    const probed = await h.db.prisma.probeTask.findMany({ where: { runId } });
    expect(probed.map((p) => p.noiseLevel)).toEqual(expect.arrayContaining([8, 11, 15]));
    expect(probed.every((p) => JSON.stringify(p.labels) === '[20,200]')).toBe(true);
    // Both budgets at every probed level and layer, none at all.
    expect(await h.db.prisma.probeResult.count({ where: { runId, labels: 20 } })).toBe(2 * probed.length);
    expect(await h.db.prisma.probeResult.count({ where: { runId, labels: 200 } })).toBe(2 * probed.length);
    expect(await h.db.prisma.probeResult.count({ where: { runId, labels: null } })).toBe(0);
    const events = await h.db.prisma.sweepEvent.findMany({ where: { sweepId: created.sweep.id, type: 'probe.search' }, orderBy: { id: 'asc' } });
    expect(events.at(-1)?.data).toMatchObject({ runId, done: true, best: { noiseLevel: 11 } });
  });

  it('decides each round once: repeated and concurrent completions, and a lost Redis', async () => {
    const created = await h.services.orchestrator.submit(spec, planSweep(spec));
    const [runId] = created.runIds;
    const checkpointId = await finishRun(runId, created.sweep.id);
    const [a, b, c, d] = await queuedTasks(runId);
    await probe(a, checkpointId, 0);
    await probe(b, checkpointId, 0);
    // The last two of the round complete at the same time: exactly one of them opens the next round.
    const outcomes = await Promise.all([probe(c, checkpointId, 0), probe(d, checkpointId, 0)]);
    expect(outcomes.map((o) => o.next.length).sort()).toEqual([0, 2]);
    const second = await queuedTasks(runId);
    expect(second.map((t) => t.noiseLevel)).toEqual([5, 30]);
    // A retried store of a finished task changes nothing.
    const done = await h.db.prisma.probeTask.findUniqueOrThrow({ where: { id: d.id } });
    await h.services.orchestrator.probeSucceeded(done, { checkpointId, dataset: 'fashion-mnist', method: 'ddpm', untrained: false, backend: 'wasm', workerId: 'w' }, [{ layer: 'out_1', accuracy: 0.5, featureDim: 8 }]);
    expect(await h.db.prisma.probeTask.count({ where: { runId } })).toBe(6);
    // Redis lost the new round's jobs: the reconciler offers them again.
    await deleteQueueKeys(h.redisUrl, h.prefix);
    await h.services.orchestrator.reconcile({ workerStaleMs: 30_000 });
    expect(await jobs()).toEqual(expect.arrayContaining(second.map((t) => `probe-${t.id}`)));
  });

  it('ranks mean and spread over seeds per (model, layer, noise level, protocol)', async () => {
    const fullGrid = sweepSpecSchema.parse({ ...spec, probe: { timesteps: [5, 11], layers: ['out_1'] } });
    const created = await h.services.orchestrator.submit(fullGrid, planSweep(fullGrid));
    for (const [seed, runId] of created.runIds.entries()) {
      const checkpointId = await finishRun(runId, created.sweep.id);
      for (const t of await queuedTasks(runId)) await probe(t, checkpointId, seed);
    }
    const rows = await h.services.leaderboard.topByConfig({ sweepId: created.sweep.id });
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ layer: 'out_1', noiseLevel: 11, n: 2, seeds: [0, 1], modelName: 'ddpm-tiny', noiseProtocol: 'fixed', probeProtocol: 'fast', pooling: 'gap' });
    expect(rows[0].mean).toBeCloseTo((accuracyAt(11, 0) + accuracyAt(11, 1)) / 2, 10);
    expect(rows[0].std).toBeCloseTo(Math.SQRT1_2 * 0.01, 10);
    expect(rows[0].min).toBeCloseTo(accuracyAt(11, 1), 10);
    expect(rows[1].noiseLevel).toBe(5);
    const cells = await h.services.leaderboard.top({ sweepId: created.sweep.id });
    expect(cells).toHaveLength(4);
    expect(cells[0]).toMatchObject({ noiseProtocol: 'fixed', probeProtocol: 'fast', pooling: 'gap' });
  });
});
