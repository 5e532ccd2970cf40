import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { apiEnvSchema } from '@ddae/config';
import { createTestDatabase, deleteQueueKeys, uniqueQueuePrefix, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const spec = {
  name: 'policy',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 10 },
  probe: { layers: ['out_1'], timesteps: [5] },
};

/** Headers on every response, the Host allow-list and the CORS policy, on the real app. */
describe('HTTP policy (real Postgres and Redis)', () => {
  let db: TestDatabase;
  const prefix = uniqueQueuePrefix('policy');
  const apps: INestApplication[] = [];

  const start = async (extra: Record<string, string> = {}) => {
    const env = apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error', API_AUTH: 'off', ...extra });
    const app = await createApiApp(env);
    await app.init();
    apps.push(app);
    return app.getHttpServer();
  };

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db?.drop();
  });

  it('sends nosniff and no X-Powered-By on every kind of response', async () => {
    const server = await start();
    const responses = {
      'a read': await request(server).get('/api/sweeps').expect(200),
      'the web page': await request(server).get('/'),
      health: await request(server).get('/health'),
      'an unknown route': await request(server).get('/api/nothing-here').expect(404),
      'a bad id': await request(server).get('/api/sweeps/not-a-uuid').expect(400),
      'a malformed body': await request(server).post('/api/sweeps').set('content-type', 'application/json').send('{broken').expect(400),
      'the OpenAPI document': await request(server).get('/api/docs/openapi.json').expect(200),
    };
    for (const [what, res] of Object.entries(responses)) {
      expect({ what, nosniff: res.headers['x-content-type-options'], poweredBy: res.headers['x-powered-by'] }).toEqual({ what, nosniff: 'nosniff', poweredBy: undefined });
    }
  });

  it('answers only to its own host names by default: a rebound name gets 403 and writes nothing', async () => {
    const server = await start();
    for (const host of ['127.0.0.1:3000', 'localhost:3000', 'LOCALHOST', '[::1]:3000', '127.0.0.1']) {
      await request(server).get('/api/sweeps').set('host', host).expect(200);
    }
    const refused = await request(server).get('/api/sweeps').set('host', 'attacker.example:3000').expect(403);
    expect(refused.body).toMatchObject({ statusCode: 403, error: 'forbidden' });
    expect(refused.body.message).toMatch(/ALLOWED_HOSTS/);
    await request(server).post('/api/sweeps').set('host', 'attacker.example').send(spec).expect(403);
    expect(await db.prisma.sweep.count({ where: { name: 'policy' } })).toBe(0);
    // Probes of an orchestrator name the pod's address: health is exempt (it tells only up or down).
    await request(server).get('/health').set('host', '10.1.2.3:3000').expect((res) => expect([200, 503]).toContain(res.status));
  });

  it('ALLOWED_HOSTS replaces the default list; * turns the check off', async () => {
    const listed = await start({ ALLOWED_HOSTS: 'api.lab.example, 10.0.0.5' });
    await request(listed).get('/api/sweeps').set('host', 'api.lab.example:8443').expect(200);
    await request(listed).get('/api/sweeps').set('host', '10.0.0.5').expect(200);
    await request(listed).get('/api/sweeps').set('host', 'localhost:3000').expect(403);
    const open = await start({ ALLOWED_HOSTS: '*' });
    await request(open).get('/api/sweeps').set('host', 'anything.example').expect(200);
  });

  it('gives no cross-origin access by default', async () => {
    const server = await start();
    const res = await request(server).get('/api/sweeps').set('origin', 'https://elsewhere.example').expect(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await request(server).options('/api/sweeps').set('origin', 'https://elsewhere.example').set('access-control-request-method', 'POST');
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('lets the origins of CORS_ORIGINS call, with the headers the API reads', async () => {
    const server = await start({ CORS_ORIGINS: 'https://lab.example' });
    const res = await request(server).get('/api/sweeps').set('origin', 'https://lab.example').expect(200);
    expect(res.headers['access-control-allow-origin']).toBe('https://lab.example');
    const preflight = await request(server)
      .options('/api/sweeps')
      .set('origin', 'https://lab.example')
      .set('access-control-request-method', 'POST')
      .set('access-control-request-headers', 'authorization, content-type, idempotency-key')
      .expect(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://lab.example');
    expect(preflight.headers['access-control-allow-headers']?.toLowerCase()).toBe('authorization,content-type,idempotency-key,last-event-id');
    expect(preflight.headers['access-control-allow-methods']).toBe('GET,POST');
    const other = await request(server).get('/api/sweeps').set('origin', 'https://elsewhere.example').expect(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});
