import { sweepSpecSchema } from '@ddae/contracts';
import { ComputeQueue } from '@ddae/queue';
import { useServicesHarness } from '@ddae/testing';
import { planSweep } from './plan';
import { createSweepServices } from './services';

/** Every transition of a sweep is an event, and a sweep that has ended ends its stream with its final status. */
describe('sweep events (real Postgres and Redis)', () => {
  const h = useServicesHarness('events', { queue: (redisUrl, prefix) => new ComputeQueue({ redisUrl, prefix }), services: createSweepServices });

  const spec = (name: string, seeds = [0]) =>
    sweepSpecSchema.parse({
      name,
      dataset: 'fashion-mnist',
      models: [{ method: 'ddpm', unet: 'tiny' }],
      pretrain: { steps: 10, seeds },
      probe: { timesteps: [5], layers: ['out_1'] },
      baselines: ['pixels'],
    });
  const submit = (name: string, seeds?: number[]) => {
    const s = spec(name, seeds);
    return h.services.orchestrator.submit(s, planSweep(s));
  };
  const events = async (sweepId: string) => (await h.services.events.after(sweepId, 0n)).map((e) => ({ type: e.type, data: e.data as Record<string, unknown> }));

  it('a worker restarted under the same id hands its run and baseline back with requeued events', async () => {
    const created = await submit('restart');
    const [runId] = created.runIds;
    const [baselineId] = created.pendingBaselineIds;
    await h.services.runs.claim(runId, { workerId: 'w-1', backend: 'wasm' });
    await h.services.baselines.claim(baselineId, { workerId: 'w-1', backend: 'wasm' });

    expect(await h.services.workers.releaseHeld('w-1')).toBe(2);
    const types = (await events(created.sweep.id)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['run.requeued', 'baseline.requeued']));
    expect((await events(created.sweep.id)).find((e) => e.type === 'run.requeued')?.data).toMatchObject({ runId, error: 'its worker restarted' });
  });

  it('a worker that stopped heartbeating has its run handed back by the reconciler with a run.requeued event', async () => {
    const created = await submit('stale');
    const [runId] = created.runIds;
    await h.services.runs.claim(runId, { workerId: 'gone', backend: 'wasm' });
    const { reset } = await h.services.orchestrator.reconcile({ workerStaleMs: 1_000 });
    expect(reset).toBeGreaterThanOrEqual(1);
    expect((await events(created.sweep.id)).filter((e) => e.type === 'run.requeued').map((e) => e.data)).toEqual([
      expect.objectContaining({ runId, error: 'its worker stopped heartbeating' }),
    ]);
  });

  it('a failed baseline sends its requeued and failed events with its reason to the sweeps waiting on it', async () => {
    const created = await submit('baseline-fails');
    const [baselineId] = created.pendingBaselineIds;
    await h.services.baselines.claim(baselineId, { workerId: 'w', backend: 'wasm' });
    await h.services.baselines.fail(baselineId, 'dataset missing', false);
    await h.services.baselines.claim(baselineId, { workerId: 'w', backend: 'wasm' });
    await h.services.baselines.fail(baselineId, 'dataset missing', true);
    await h.services.orchestrator.baselineEnded(baselineId);

    const all = await events(created.sweep.id);
    expect(all.filter((e) => e.type.startsWith('baseline.')).map((e) => [e.type, e.data['error']])).toEqual([
      ['baseline.requeued', 'dataset missing'],
      ['baseline.failed', 'dataset missing'],
    ]);
  });

  it('a shared baseline that ends after a sweep was cancelled adds nothing after its final status', async () => {
    const first = await submit('first');
    const second = await submit('second', [1]);
    const [baselineId] = first.pendingBaselineIds;
    expect(second.pendingBaselineIds).toEqual([baselineId]);
    await h.services.baselines.claim(baselineId, { workerId: 'w', backend: 'wasm' });
    await h.services.orchestrator.cancel(first.sweep.id);
    await h.services.baselines.complete(baselineId, { accuracy: 0.8, featureDim: 1024 });
    await h.services.orchestrator.baselineEnded(baselineId);

    const cancelled = await events(first.sweep.id);
    expect(cancelled.at(-1)).toEqual({ type: 'sweep.status', data: { status: 'CANCELLED' } });
    // The sweep still waiting on it hears of it.
    expect((await events(second.sweep.id)).map((e) => e.type)).toContain('baseline.succeeded');
  });

  it('a run that fails after its sweep was cancelled adds nothing after the final status', async () => {
    const created = await submit('cancelled-run');
    const [runId] = created.runIds;
    await h.services.runs.claim(runId, { workerId: 'w', backend: 'wasm' });
    await h.services.orchestrator.cancel(created.sweep.id);
    await h.services.runs.fail(runId, 'killed', true);
    await h.services.orchestrator.taskEnded(created.sweep.id);
    expect((await events(created.sweep.id)).at(-1)).toEqual({ type: 'sweep.status', data: { status: 'CANCELLED' } });
    expect(await h.services.runs.status(runId)).toBe('CANCELLED');
  });
});
