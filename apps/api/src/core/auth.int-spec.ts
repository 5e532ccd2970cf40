import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { apiEnvSchema } from '@ddae/config';
import { TokenRepository } from '@ddae/db';
import { createTestDatabase, deleteQueueKeys, uniqueQueuePrefix, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SPEC = { name: 'auth', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 5 }, probe: { timesteps: [5] } };

describe('API tokens (real Postgres)', () => {
  let db: TestDatabase;
  let tokens: TokenRepository;
  let prefix: string;
  const apps: INestApplication[] = [];

  const start = async (mode: 'off' | 'writes' | 'all') => {
    const app = await createApiApp(apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error', API_AUTH: mode }));
    await app.init();
    apps.push(app);
    return app.getHttpServer();
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    tokens = new TokenRepository(db.prisma);
    prefix = uniqueQueuePrefix('auth');
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db.drop();
  });

  it('requires a submit token on every mutating endpoint, and stores only its hash', async () => {
    const server = await start('writes');
    const { token: reader } = await tokens.create('dashboard', 'read');
    const { token: submitter, row } = await tokens.create('ci', 'submit');
    expect(JSON.stringify(await db.prisma.apiToken.findMany())).not.toContain(submitter);
    expect(row.prefix).toBe(submitter.slice(0, 10));

    const denied = await request(server).post('/api/sweeps').send(SPEC).expect(401);
    expect(denied.body.message).toMatch(/token create --scope submit/);
    await request(server).post('/api/sweeps').set('authorization', 'Bearer nope').send(SPEC).expect(401);
    await request(server).post('/api/sweeps').set('authorization', `Bearer ${reader}`).send(SPEC).expect(403);
    expect(await db.prisma.sweep.count()).toBe(0);
    const { body } = await request(server).post('/api/sweeps').set('authorization', `Bearer ${submitter}`).send(SPEC).expect(201);
    for (const action of ['pause', 'resume', 'retry-failed', 'cancel']) await request(server).post(`/api/sweeps/${body.id}/${action}`).expect(401);
    await request(server).post(`/api/sweeps/${body.id}/cancel`).set('authorization', `Bearer ${submitter}`).expect(200);
    // Reads stay open in this mode; health and the page are always public.
    await request(server).get(`/api/sweeps/${body.id}`).expect(200);
    await request(server).get('/health').expect(200);

    expect(await tokens.revoke(row.prefix)).toBe(1);
    await request(server).post('/api/sweeps').set('authorization', `Bearer ${submitter}`).send(SPEC).expect(401);
  });

  it('guards reads too when API_AUTH=all', async () => {
    const server = await start('all');
    const { token: reader } = await tokens.create('dashboard', 'read');
    await request(server).get('/api/leaderboard').expect(401);
    await request(server).get('/api/leaderboard').set('authorization', `Bearer ${reader}`).expect(200);
    await request(server).get('/health').expect(200);
    await request(server).get('/').expect(200);
  });

  it('serves every endpoint without a token when API_AUTH=off, and refuses a mode it does not know', async () => {
    const [off, writes] = [await start('off'), await start('writes')];
    // The same write, without a token: stored and queued when auth is off, refused when it is on.
    await request(writes).post('/api/sweeps').send({ ...SPEC, name: 'auth-off' }).expect(401);
    expect(await db.prisma.sweep.count({ where: { name: 'auth-off' } })).toBe(0);
    const { body } = await request(off).post('/api/sweeps').send({ ...SPEC, name: 'auth-off' }).expect(201);
    expect(body).toMatchObject({ queued: true });
    expect(await db.prisma.sweep.count({ where: { name: 'auth-off' } })).toBe(1);
    for (const action of ['pause', 'resume', 'retry-failed']) await request(off).post(`/api/sweeps/${body.id}/${action}`).expect(200);
    expect((await request(off).post(`/api/sweeps/${body.id}/cancel`).expect(200)).body.status).toBe('CANCELLED');
    await request(writes).post(`/api/sweeps/${body.id}/cancel`).expect(401);
    await request(off).get(`/api/sweeps/${body.id}`).expect(200);
    await request(off).get('/api/leaderboard').expect(200);

    const bad = apiEnvSchema.safeParse({ DATABASE_URL: db.url, API_AUTH: 'none' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]).toMatchObject({ path: ['API_AUTH'] });
    expect(bad.error?.issues[0].message).toMatch(/off.*writes.*all/);
  });
});
