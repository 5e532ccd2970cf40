import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { apiEnvSchema } from '@ddae/config';
import type { SweepSpecInput } from '@ddae/contracts';
import { BaselineRepository } from '@ddae/db';
import { createTestDatabase, deleteQueueKeys, startRedisServer, uniqueQueuePrefix, type RedisServer, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';

const spec: SweepSpecInput = {
  name: 'faults',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 10, batchSize: 4, seeds: [0] },
  probe: { layers: ['out_1'], timesteps: [5], trainSize: 100, testSize: 50, epochs: 1 },
  baselines: ['pixels'],
};

/** What a client sees when a dependency fails: the truth, and nothing done twice. */
describe('sweeps API under faults (real Postgres, a Redis of its own)', () => {
  let db: TestDatabase;
  let redis: RedisServer;
  let app: INestApplication;
  const prefix = uniqueQueuePrefix('faults');

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = await startRedisServer();
    const env = apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL: redis.url, QUEUE_PREFIX: prefix, RECONCILE_MS: '300', LOG_LEVEL: 'error', API_AUTH: 'off' });
    app = await createApiApp(env);
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    if (redis?.running) await deleteQueueKeys(redis.url, prefix);
    await redis?.dispose();
    await db?.drop();
  });

  beforeEach(async () => {
    await db.prisma.$executeRawUnsafe('TRUNCATE sweeps, baselines, workers CASCADE');
  });

  it('shows each baseline of a sweep with the reason it failed', async () => {
    const server = app.getHttpServer();
    const { body } = await request(server).post('/api/sweeps').send(spec).expect(201);
    const baselines = new BaselineRepository(db.prisma);
    const [row] = await db.prisma.baseline.findMany();
    await baselines.claim(row.id, { workerId: 'w', backend: 'wasm' });
    await baselines.fail(row.id, 'Fashion-MNIST not found under /nowhere', true);
    const sweep = await request(server).get(`/api/sweeps/${body.id}`).expect(200);
    expect(sweep.body.baselines).toEqual([
      expect.objectContaining({ id: row.id, kind: 'pixels', dataset: 'fashion-mnist', status: 'FAILED', error: 'Fashion-MNIST not found under /nowhere', attempts: 1 }),
    ]);
  });
});
