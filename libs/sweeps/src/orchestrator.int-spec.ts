import { QUEUES, sweepSpecSchema } from '@ddae/contracts';
import { THROTTLED } from '@ddae/db';
import { ComputeQueue, jobPriority } from '@ddae/queue';
import { deleteQueueKeys, queuedJobIds, useServicesHarness } from '@ddae/testing';
import { planSweep } from './plan';
import { createSweepServices } from './services';

describe('SweepOrchestrator (real Postgres and Redis)', () => {
  const h = useServicesHarness('orch', { queue: (redisUrl, prefix) => new ComputeQueue({ redisUrl, prefix }), services: createSweepServices });

  const spec = sweepSpecSchema.parse({
    name: 'orchestrator',
    dataset: 'fashion-mnist',
    models: [{ method: 'ddpm', unet: 'tiny' }],
    pretrain: { steps: 10, seeds: [0, 1] },
    probe: { timesteps: [5, 50], layers: ['out_1'] },
  });

  const jobs = () => queuedJobIds(h.redisUrl, h.prefix, QUEUES.compute);

  it('enqueues a finished run\'s probe tasks, once however often it is told', async () => {
    const created = await h.services.orchestrator.submit(spec, planSweep(spec));
    const [runId] = created.runIds;
    await h.services.runs.claim(runId, { workerId: 'w', backend: 'wasm' });
    await h.services.runs.complete(runId, { step: 10, path: 'runs/x/step-10', sha256: 'abc' });
    await h.services.orchestrator.runSucceeded(runId, created.sweep.id);
    await h.services.orchestrator.runSucceeded(runId, created.sweep.id);
    const probes = await h.db.prisma.probeTask.findMany({ where: { runId } });
    expect((await jobs()).filter((id) => id.startsWith('probe-')).sort()).toEqual(probes.map((p) => `probe-${p.id}`).sort());
    expect((await h.services.sweeps.findById(created.sweep.id))?.status).toBe('RUNNING');
  });

  it('re-offers queued rows after Redis lost them, and requeues rows of a dead worker only', async () => {
    const created = await h.services.orchestrator.submit(spec, planSweep(spec));
    const [deadRun, liveRun] = created.runIds;
    await h.services.workers.beat({ id: 'alive', hostname: 'h', pid: 1, backend: 'wasm', device: 'cpu', state: 'busy', currentJobId: null });
    await h.services.runs.claim(deadRun, { workerId: 'gone', backend: 'wasm' });
    await h.services.runs.claim(liveRun, { workerId: 'alive', backend: 'wasm' });
    await deleteQueueKeys(h.redisUrl, h.prefix); // as if Redis restarted empty
    expect(await jobs()).toEqual([]);

    const result = await h.services.orchestrator.reconcile({ workerStaleMs: 30_000 });
    expect(result.reset).toBe(1);
    expect(await h.services.runs.status(deadRun)).toBe('QUEUED');
    expect(await h.services.runs.status(liveRun)).toBe('RUNNING');
    const baseline = await h.db.prisma.baseline.findFirstOrThrow();
    expect(await jobs()).toEqual([`baseline-${baseline.id}`, `pretrain-${deadRun}`].sort());

    // Idempotent: a second pass finds nothing to reset and adds no job.
    expect((await h.services.orchestrator.reconcile({ workerStaleMs: 30_000 })).reset).toBe(0);
    expect(await jobs()).toHaveLength(2);
  });

  it('runs the cheap untrained-network control as early as a baseline', async () => {
    const withControl = sweepSpecSchema.parse({ ...spec, baselines: ['pixels', 'untrained'] });
    await h.services.orchestrator.submit(withControl, planSweep(withControl));
    const control = await h.db.prisma.run.findFirstOrThrow({ where: { untrained: true } });
    const trained = await h.db.prisma.run.findFirstOrThrow({ where: { untrained: false } });
    expect((await h.queue.queue.getJob(`pretrain-${control.id}`))?.opts.priority).toBe(jobPriority('baseline'));
    expect((await h.queue.queue.getJob(`pretrain-${trained.id}`))?.opts.priority).toBe(jobPriority('pretrain'));
  });

  it('shares the workers fairly: a small sweep submitted after a big one starts right after the current jobs', async () => {
    const big = sweepSpecSchema.parse({ ...spec, name: 'big', pretrain: { steps: 10, seeds: [0, 1, 2, 3, 4, 5] }, baselines: [] });
    const small = sweepSpecSchema.parse({ ...spec, name: 'small', pretrain: { steps: 10, seeds: [0] }, baselines: [] });
    const urgent = sweepSpecSchema.parse({ ...spec, name: 'urgent', priority: 1, pretrain: { steps: 10, seeds: [0] }, baselines: [] });
    const bigSweep = await h.services.orchestrator.submit(big, planSweep(big));
    const smallSweep = await h.services.orchestrator.submit(small, planSweep(small));
    const urgentSweep = await h.services.orchestrator.submit(urgent, planSweep(urgent));
    // BullMQ takes the lowest priority number first (FIFO among equals).
    const waiting = (await h.queue.queue.getJobs(['prioritized'])).sort((a, b) => (a.opts.priority ?? 0) - (b.opts.priority ?? 0) || a.timestamp - b.timestamp);
    const sweepOf = new Map<string, string>();
    for (const [name, created] of [['big', bigSweep], ['small', smallSweep], ['urgent', urgentSweep]] as const) for (const id of created.runIds) sweepOf.set(`pretrain-${id}`, name);
    expect(waiting.map((j) => sweepOf.get(j.id as string))).toEqual(['urgent', 'big', 'small', 'big', 'big', 'big', 'big', 'big']);
  });

  it('caps how many tasks of a sweep run at once (maxConcurrency)', async () => {
    const capped = sweepSpecSchema.parse({ ...spec, maxConcurrency: 1 });
    const created = await h.services.orchestrator.submit(capped, planSweep(capped));
    const [first, second] = created.runIds;
    const by = { workerId: 'w', backend: 'wasm' };
    expect(await h.services.runs.claim(first, by)).toMatchObject({ id: first, status: 'RUNNING' });
    expect(await h.services.runs.claim(second, by)).toBe(THROTTLED);
    // Concurrent claims serialise on the sweep row: never two at once.
    await h.services.runs.fail(first, 'released', false);
    const racing = await Promise.all([h.services.runs.claim(first, by), h.services.runs.claim(second, by)]);
    expect(racing.filter((r) => r !== THROTTLED && r !== null)).toHaveLength(1);
    const winner = racing.find((r) => r !== THROTTLED && r !== null) as { id: string };
    await h.services.runs.complete(winner.id, { step: 10, path: 'p', sha256: 's' });
    const other = winner.id === first ? second : first;
    expect(await h.services.runs.claim(other, by)).toMatchObject({ id: other, status: 'RUNNING' });
  });

  it('stores probes during pretraining once per natural key, however often and concurrently they are reported, then probes the plateau\'s checkpoint', async () => {
    const withProgress = sweepSpecSchema.parse({ ...spec, pretrain: { ...spec.pretrain, progressProbe: { every: 5, earlyStop: { patience: 1 } } } });
    const created = await h.services.orchestrator.submit(withProgress, planSweep(withProgress));
    const [runId, otherRun] = created.runIds;
    const context = { protocol: { probe: 'fast' }, protocolKey: 'fast-key', backend: 'wasm', workerId: 'w' };
    const point = { step: 5, cells: [{ layer: 'out_1', noiseLevel: 5, accuracy: 0.42, featureDim: 8 }] };
    await h.services.runs.claim(runId, { workerId: 'w', backend: 'wasm' });
    // A resumed job replays its points while the first report may still be in flight.
    const reports = await Promise.all([1, 2, 3].map(() => h.services.orchestrator.progressProbed(runId, point, context)));
    expect(reports.filter((r) => r.isNew)).toHaveLength(1);
    // Another protocol or another run is another row.
    await h.services.orchestrator.progressProbed(runId, point, { ...context, protocolKey: 'other-key' });
    await h.services.orchestrator.progressProbed(otherRun, point, context);
    // A re-measured point (another backend) updates its row rather than adding one.
    await h.services.orchestrator.progressProbed(runId, { step: 5, cells: [{ ...point.cells[0], accuracy: 0.43 }] }, { ...context, backend: 'cpu' });
    const rows = await h.db.prisma.progressProbe.findMany({ where: { runId }, orderBy: { protocolKey: 'asc' } });
    expect(rows.map((r) => [r.step, r.layer, r.noiseLevel, r.protocolKey, r.accuracy, r.backend, r.sweepId])).toEqual([
      [5, 'out_1', 5, 'fast-key', 0.43, 'cpu', created.sweep.id],
      [5, 'out_1', 5, 'other-key', 0.42, 'wasm', created.sweep.id],
    ]);
    expect(await h.db.prisma.sweepEvent.count({ where: { sweepId: created.sweep.id, type: 'run.progress-probe' } })).toBe(3);
    // An unknown run stores nothing.
    expect(await h.services.orchestrator.progressProbed('00000000-0000-4000-8000-000000000000', point, context)).toEqual({ isNew: false });

    // The plateau at step 5 ended the task: the run completes there, and its probe tasks follow.
    expect(await h.services.runs.complete(runId, { step: 5, path: 'runs/x/step-5', sha256: 'abc' }, { stoppedEarly: true })).toBe(true);
    await h.services.orchestrator.runSucceeded(runId, created.sweep.id);
    expect(await h.db.prisma.run.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ status: 'SUCCEEDED', stepsDone: 5, steps: 10, stoppedEarlyAt: 5 });
    expect((await h.services.runs.finalCheckpoint(runId))?.step).toBe(5);
    const probes = await h.db.prisma.probeTask.findMany({ where: { runId } });
    expect((await jobs()).filter((id) => id.startsWith('probe-')).sort()).toEqual(probes.map((p) => `probe-${p.id}`).sort());
    const [view] = (await h.services.progressProbes.ofSweep(created.sweep.id)).filter((r) => r.runId === runId);
    expect(view).toMatchObject({ every: 5, stoppedEarlyAt: 5, points: [{ step: 5, accuracy: 0.43 }] });
  });

  it('derives the sweep status from its rows', async () => {
    const created = await h.services.orchestrator.submit(spec, planSweep(spec));
    expect((await h.services.sweeps.findById(created.sweep.id))?.status).toBe('QUEUED');
    for (const runId of created.runIds) await h.services.runs.fail(runId, 'NonFiniteLossError: loss is NaN', true);
    const baseline = await h.db.prisma.baseline.findFirstOrThrow();
    await h.services.baselines.claim(baseline.id, { workerId: 'w', backend: 'wasm' });
    await h.services.baselines.complete(baseline.id, { accuracy: 0.8, featureDim: 784 });
    const sweep = await h.services.sweeps.refreshStatus(created.sweep.id);
    expect(sweep?.status).toBe('FAILED');
    // A failed run fails its probe tasks too: nothing is left waiting forever.
    expect(await h.db.prisma.probeTask.count({ where: { sweepId: created.sweep.id, status: 'FAILED' } })).toBe(4);
  });
});
