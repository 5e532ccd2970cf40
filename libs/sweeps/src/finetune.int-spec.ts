import { QUEUES, probeProtocolSchema, protocolAtBudget, protocolKey, sweepSpecSchema } from '@ddae/contracts';
import type { ProbeTask } from '@ddae/db';
import { ComputeQueue } from '@ddae/queue';
import { queuedJobIds, useServicesHarness } from '@ddae/testing';
import { planSweep } from './plan';
import { createSweepServices } from './services';

const GRID = [1, 2, 3, 5, 8, 11, 15, 20, 25, 30, 40, 50, 65, 80, 100, 125, 150, 200, 250, 300];

/** Linear accuracy peaks at t = 11 on out_1; out_2 is 0.02 lower everywhere. */
const linearAt = (t: number) => 0.8 - 0.05 * Math.abs(Math.log(t / 11));
const FINETUNED = 0.93;

describe('probe to choose, fine-tune to deploy (real Postgres and Redis)', () => {
  const h = useServicesHarness('finetune', { queue: (redisUrl, prefix) => new ComputeQueue({ redisUrl, prefix }), services: createSweepServices });

  const spec = sweepSpecSchema.parse({
    name: 'finetune',
    dataset: 'fashion-mnist',
    models: [{ method: 'ddpm', unet: 'tiny' }],
    pretrain: { steps: 10 },
    probe: { timesteps: GRID, layers: ['out_1', 'out_2'], trainSize: 1000, noiseSearch: { search: 'adaptive', coarse: 4 }, finetune: { cells: 'best', epochs: 2, labels: 100 } },
    baselines: ['untrained'],
  });

  async function finishRun(runId: string, sweepId: string): Promise<string> {
    await h.services.runs.claim(runId, { workerId: 'w', backend: 'wasm' });
    await h.services.runs.complete(runId, { step: 10, path: `runs/${runId}/step-10`, sha256: `sha-${runId}` });
    await h.services.orchestrator.runSucceeded(runId, sweepId);
    const checkpoint = await h.services.runs.finalCheckpoint(runId);
    if (!checkpoint) throw new Error(`run ${runId} has no final checkpoint`);
    return checkpoint.id;
  }

  /** A worker's probe job: linear tasks measure the curve, a fine-tuning task reports FINETUNED. */
  async function probe(task: ProbeTask, checkpointId: string, untrained: boolean): Promise<{ next: string[] }> {
    const claimed = await h.services.probes.claim(task.id, { workerId: 'w' });
    if (!claimed || claimed === 'throttled') throw new Error(`could not claim ${task.id}`);
    const finetune = (claimed.protocol as { probe: string }).probe === 'finetune';
    const results = claimed.layers.map((layer, i) => ({ layer, ...(finetune ? { labels: 100 } : {}), accuracy: finetune ? FINETUNED : linearAt(claimed.noiseLevel) - 0.02 * i - (untrained ? 0.3 : 0), featureDim: 8 }));
    return h.services.orchestrator.probeSucceeded(claimed, { checkpointId, dataset: 'fashion-mnist', method: 'ddpm', untrained, backend: 'wasm', workerId: 'w' }, results);
  }

  const queuedTasks = (runId: string) => h.db.prisma.probeTask.findMany({ where: { runId, status: 'QUEUED' }, orderBy: { noiseLevel: 'asc' } });

  it('fine-tunes each trained run at its best linear cell once its search is done, and shows both numbers for that cell, never ranked together', async () => {
    const created = await h.services.orchestrator.submit(spec, planSweep(spec));
    const sweepId = created.sweep.id;
    const runs = await h.db.prisma.run.findMany({ where: { sweepId }, orderBy: { untrained: 'asc' } });
    const [trained, control] = runs;
    const checkpoints = new Map<string, string>();
    for (const run of runs) checkpoints.set(run.id, await finishRun(run.id, sweepId));
    for (const run of runs) {
      for (let tasks = await queuedTasks(run.id); tasks.length; tasks = await queuedTasks(run.id)) {
        for (const t of tasks) {
          const { next } = await probe(t, checkpoints.get(run.id) as string, run.untrained);
          if (next.length) expect(await queuedJobIds(h.redisUrl, h.prefix, QUEUES.compute)).toEqual(expect.arrayContaining(next.map((id) => `probe-${id}`)));
        }
        // Between the last linear round and the fine-tuning, the sweep is never seen finished.
        expect((await h.services.sweeps.findById(sweepId))?.status).toBe(run === runs.at(-1) && !(await queuedTasks(run.id)).length ? 'SUCCEEDED' : 'RUNNING');
      }
    }
    const tuned = await h.db.prisma.probeTask.findMany({ where: { sweepId, protocolKey: { contains: 'probe=finetune' } } });
    // One fine-tuning, of the trained run (never of the untrained control), at its best linear cell, on its budget.
    expect(tuned).toHaveLength(1);
    expect(tuned[0]).toMatchObject({ runId: trained.id, noiseLevel: 11, layers: ['out_1'], labels: [100], status: 'SUCCEEDED' });
    expect(tuned[0].protocol).toMatchObject({ probe: 'finetune', epochs: 2, augment: true, learningRate: 1e-3 });
    expect(await h.db.prisma.probeTask.count({ where: { runId: control.id, protocolKey: { contains: 'probe=finetune' } } })).toBe(0);
    // A retried completion of the trained run's last linear task (a redelivered job) creates nothing twice.
    const last = await h.db.prisma.probeTask.findFirstOrThrow({ where: { runId: trained.id, protocolKey: { not: tuned[0].protocolKey } }, orderBy: { finishedAt: 'desc' } });
    const again = await h.services.orchestrator.probeSucceeded(last, { checkpointId: checkpoints.get(trained.id) as string, dataset: 'fashion-mnist', method: 'ddpm', untrained: false, backend: 'wasm', workerId: 'w' }, last.layers.map((layer, i) => ({ layer, accuracy: linearAt(last.noiseLevel) - 0.02 * i, featureDim: 8 })));
    expect(again.next).toEqual([]);
    expect(await h.db.prisma.probeTask.count({ where: { sweepId, protocolKey: { contains: 'probe=finetune' } } })).toBe(1);
    const events = await h.db.prisma.sweepEvent.findMany({ where: { sweepId, type: 'probe.finetune' } });
    expect(events.map((e) => e.data)).toEqual([expect.objectContaining({ runId: trained.id, layer: 'out_1', noiseLevel: 11 })]);

    // The verdict's best (linear, all labels) carries the same cell fine-tuned, at its budget.
    const verdict = await h.services.leaderboard.verdict(sweepId);
    expect(verdict.best).toMatchObject({ layer: 'out_1', noiseLevel: 11, probeProtocol: 'fast', mean: linearAt(11) });
    expect(verdict.best?.finetuned).toEqual({ mean: FINETUNED, std: null, n: 1, protocolKey: protocolKey(protocolAtBudget(probeProtocolSchema.parse(tuned[0].protocol), 100)), labels: 100 });
    // Never ranked together: the linear rankings hold no fine-tuned number, the finetune one holds only it.
    const linearCells = await h.services.leaderboard.top({ sweepId, labels: null });
    expect(linearCells.every((r) => r.probeProtocol !== 'finetune')).toBe(true);
    expect(await h.services.leaderboard.top({ sweepId, labels: 100 })).toEqual([]);
    const tunedCells = await h.services.leaderboard.top({ sweepId, labels: 100, protocol: 'finetune' });
    expect(tunedCells.map((r) => [r.layer, r.noiseLevel, r.accuracy, r.probeProtocol])).toEqual([['out_1', 11, FINETUNED, 'finetune']]);
    const tunedConfigs = await h.services.leaderboard.topByConfig({ sweepId, labels: 100, protocol: 'finetune' });
    expect(tunedConfigs.map((r) => [r.mean, r.finetuned])).toEqual([[FINETUNED, null]]);
    // A run's best and the heatmap are linear: FINETUNED would top both.
    expect((await h.services.leaderboard.top({ sweepId, per: 'run', labels: 100 })).length).toBe(0);
    expect((await h.services.leaderboard.top({ sweepId, per: 'run' }))[0].accuracy).toBe(linearAt(11));
    expect((await h.services.leaderboard.heatmap(sweepId, 100)).length).toBe(0);
    expect(Math.max(...(await h.services.leaderboard.heatmap(sweepId)).map((c) => c.mean))).toBe(linearAt(11));
    expect(await h.services.leaderboard.budgets(sweepId)).toEqual([null]);
  });
});
