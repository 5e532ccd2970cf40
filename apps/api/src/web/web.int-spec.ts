import { createHash } from 'node:crypto';
import { Script } from 'node:vm';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { apiEnvSchema } from '@ddae/config';
import { createTestDatabase, deleteQueueKeys, uniqueQueuePrefix, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('web page (real Postgres and Redis)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let prefix: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = uniqueQueuePrefix('web');
    const env = apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error' });
    app = await createApiApp(env);
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db?.drop();
  });

  it('serves the page at / (outside /api) as self-contained HTML', async () => {
    const res = await request(app.getHttpServer()).get('/').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const html = res.text;
    for (const marker of ['data-page="ddae-web"', 'id="leaderboard"', 'id="sweeps"', 'id="heatmaps"', 'id="progress"', '/api/leaderboard', '/api/sweeps', '/heatmap', '/progress']) {
      expect(html).toContain(marker);
    }
    // The data sets and methods of the contracts fill the filters; nothing is left to substitute.
    expect(html).toContain('"datasets":["fashion-mnist","mnist","cifar10"]');
    expect(html).not.toContain('__DDAE_CONFIG__');
    // No external resources (the machines have no internet) and no HTML built from strings.
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=["']?https?:/i);
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    // The inline script is valid JavaScript, and the CSP allows exactly it.
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    expect(() => new Script(script)).not.toThrow();
    const csp = res.headers['content-security-policy'];
    expect(csp).toContain(`'sha256-${createHash('sha256').update(script).digest('base64')}'`);
    expect(csp).toContain("default-src 'none'");
  });

  it('keeps the page out of the /api prefix; the document names it as the one HTML operation', async () => {
    const server = app.getHttpServer();
    const doc = await request(server).get('/api/docs/openapi.json').expect(200);
    expect(Object.keys(doc.body.paths['/'].get.responses['200'].content)).toEqual(['text/html']);
    expect(Object.keys(doc.body.paths).every((p) => p.startsWith('/api/') || p === '/health' || p === '/metrics' || p === '/')).toBe(true);
    await request(server).get('/api').expect(404);
    await request(server).get('/health').expect(200);
  });
});
