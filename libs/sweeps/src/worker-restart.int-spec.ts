import { UnrecoverableError, Worker } from 'bullmq';
import { QUEUES, sweepSpecSchema } from '@ddae/contracts';
import { WorkerRepository } from '@ddae/db';
import { ComputeQueue, redisConnection } from '@ddae/queue';
import { createTestDatabase, deleteQueueKeys, uniqueQueuePrefix, type TestDatabase } from '@ddae/testing';
import { planSweep } from './plan';
import { createSweepServices } from './services';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('recovery from a crash loop (real Postgres and Redis)', () => {
  let db: TestDatabase;
  const prefix = uniqueQueuePrefix('restart');

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await deleteQueueKeys(REDIS_URL, prefix);
    await db.drop();
  });

  it('hands back what its previous process left RUNNING, and nothing of other workers', async () => {
    const queue = new ComputeQueue({ redisUrl: REDIS_URL, prefix });
    try {
      const services = createSweepServices(db.prisma, queue);
      const spec = sweepSpecSchema.parse({ name: 'restart', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 10, seeds: [0, 1] }, probe: { timesteps: [5], layers: ['out_1'] } });
      const created = await services.orchestrator.submit(spec, planSweep(spec));
      const [mine, theirs] = created.runIds;
      await services.runs.claim(mine, { workerId: 'w-1', backend: 'wasm' });
      await services.runs.claim(theirs, { workerId: 'w-2', backend: 'wasm' });
      const workers = new WorkerRepository(db.prisma);

      expect(await workers.releaseHeld('w-1')).toBe(1);
      expect(await db.prisma.run.findUniqueOrThrow({ where: { id: mine } })).toMatchObject({ status: 'QUEUED', error: 'its worker restarted' });
      expect(await db.prisma.run.findUniqueOrThrow({ where: { id: theirs } })).toMatchObject({ status: 'RUNNING', workerId: 'w-2' });
      // Nothing left to hand back the second time.
      expect(await workers.releaseHeld('w-1')).toBe(0);
    } finally {
      await queue.close();
    }
  });

  it('the reconciler replaces a job BullMQ failed for stalling too often once its row is QUEUED again', async () => {
    const own = `${prefix}-stalled`;
    const queue = new ComputeQueue({ redisUrl: REDIS_URL, prefix: own });
    const worker = new Worker(QUEUES.compute, null, { connection: redisConnection(REDIS_URL, 'worker'), prefix: own, autorun: false });
    try {
      const services = createSweepServices(db.prisma, queue);
      const spec = sweepSpecSchema.parse({ name: 'stalled', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 10, seeds: [0] }, probe: { timesteps: [5], layers: ['out_1'] }, baselines: [] });
      const created = await services.orchestrator.submit(spec, planSweep(spec));
      const [runId] = created.runIds;
      // What BullMQ does to a job whose workers keep dying: it fails it for good ("job stalled more
      // than allowable limit") and keeps it, under its id, for inspection.
      const job = await worker.getNextJob('token');
      expect(job?.id).toBe(`pretrain-${runId}`);
      await job?.moveToFailed(new UnrecoverableError('job stalled more than allowable limit'), 'token');
      expect(await queue.queue.getJobState(`pretrain-${runId}`)).toBe('failed');
      await services.runs.claim(runId, { workerId: 'dead', backend: 'wasm' });

      // Its worker stopped heartbeating: the row goes back to QUEUED and a live job replaces the failed one.
      await services.orchestrator.reconcile({ workerStaleMs: 1_000 });
      expect(await services.runs.status(runId)).toBe('QUEUED');
      expect(['prioritized', 'waiting']).toContain(await queue.queue.getJobState(`pretrain-${runId}`));
    } finally {
      await worker.close();
      await queue.close();
      await deleteQueueKeys(REDIS_URL, own);
    }
  });
});
