import { sweepSpecSchema } from '@ddae/contracts';
import { WorkerRepository } from '@ddae/db';
import { ComputeQueue } from '@ddae/queue';
import { createTestDatabase, deleteQueueKeys, uniqueQueuePrefix, type TestDatabase } from '@ddae/testing';
import { planSweep } from './plan';
import { createSweepServices } from './services';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('a worker restarted under the same id (real Postgres)', () => {
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
});
