import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { apiEnvSchema } from '@ddae/config';
import { healthDownSchema, QUEUES, type SweepSpecInput } from '@ddae/contracts';
import { BaselineRepository } from '@ddae/db';
import { createTestDatabase, deleteQueueKeys, queuedJobIds, startRedisServer, uniqueQueuePrefix, waitFor, type RedisServer, type TestDatabase } from '@ddae/testing';
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
    // The reconciler every 300 ms: it must queue what a submission could not.
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
    await db.truncate('sweeps', 'baselines', 'workers');
  });

  it('with Redis down, a submission is accepted (202, stored, queued: false), a retry with its key is the same sweep, and the reconciler queues it once Redis is back', async () => {
    const server = app.getHttpServer();
    await redis.stop('SIGKILL');
    try {
      const first = await request(server).post('/api/sweeps').set('idempotency-key', 'redis-down-1').send(spec).expect(202);
      expect(first.body).toMatchObject({ created: true, queued: false, status: 'QUEUED' });
      expect(first.body.note).toMatch(/reconciler/);
      // The client retries (it cannot know whether the first attempt counted): the same sweep.
      const retry = await request(server).post('/api/sweeps').set('idempotency-key', 'redis-down-1').send(spec).expect(200);
      expect(retry.body).toMatchObject({ id: first.body.id, created: false });
      expect(await db.prisma.sweep.count()).toBe(1);
    } finally {
      await redis.start();
    }
    const run = await db.prisma.run.findFirstOrThrow({ where: { sweepId: (await db.prisma.sweep.findFirstOrThrow()).id } });
    const baseline = await db.prisma.baseline.findFirstOrThrow();
    const expected = [`baseline-${baseline.id}`, `pretrain-${run.id}`].sort();
    await waitFor(
      'the reconciler to queue the sweep submitted while Redis was down',
      async () => {
        const ids = (await queuedJobIds(redis.url, prefix, QUEUES.compute)).sort();
        return expected.every((id) => ids.includes(id)) ? ids : undefined;
      },
      { timeoutMs: 30_000, describe: async () => (await queuedJobIds(redis.url, prefix, QUEUES.compute)).join(', ') },
    );
    await request(server).get('/health').expect(200);
  });

  it('/health answers 503 naming what is down, and 200 once it is back', async () => {
    const server = app.getHttpServer();
    await redis.stop('SIGKILL');
    try {
      const health = await request(server).get('/health').expect(503);
      expect(healthDownSchema.parse(health.body)).toEqual({ statusCode: 503, error: 'service_unavailable', message: 'redis is down', status: 'degraded', postgres: 'up', redis: 'down' });
    } finally {
      await redis.start();
    }
    await waitFor('the API to see Redis again', async () => ((await request(server).get('/health')).status === 200 ? true : undefined), { timeoutMs: 30_000 });
  });

  it('with Redis up, a submission is created and queued (201, queued: true)', async () => {
    const res = await request(app.getHttpServer()).post('/api/sweeps').send(spec).expect(201);
    expect(res.body).toMatchObject({ created: true, queued: true });
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
