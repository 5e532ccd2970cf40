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
    for (const marker of ['data-page="ddae-web"', 'id="leaderboard"', 'id="sweeps"', 'id="heatmaps"', 'id="progress"']) {
      expect(html).toContain(marker);
    }
    // The data sets and methods of the contracts fill the filters; nothing is left to substitute.
    expect(html).toContain('"datasets":["fashion-mnist","mnist","cifar10"]');
    expect(html).not.toContain('__DDAE_CONFIG__');
    // No external resources (the machines have no internet) and no HTML built from strings.
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=["']?https?:/i);
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    // Two inline scripts, the API client's bundle then the page's own: valid JavaScript, and the CSP allows exactly them.
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    expect(scripts).toHaveLength(2);
    const csp = res.headers['content-security-policy'];
    for (const script of scripts) {
      expect(() => new Script(script)).not.toThrow();
      expect(csp).toContain(`'sha256-${createHash('sha256').update(script).digest('base64')}'`);
    }
    expect(csp).toMatch(/script-src 'sha256-[^' ]+' 'sha256-[^' ]+';/);
    expect(csp).toContain("default-src 'none'");
    // The first defines the client the second reads the API through, never fetching itself.
    const [client, page] = scripts;
    // (Booleans: a failure must not print a 230 KB bundle.)
    expect(/^("use strict";)?var ddaeApi=/.test(client)).toBe(true);
    // zod with its English messages only (~236 KB); all its locales would be ~500 KB on every page load.
    expect(client.length).toBeLessThan(300_000);
    for (const call of ['client.listSweeps(', 'client.getSweep(', 'client.heatmap(', 'client.verdict(', 'client.loss(', 'client.progress(', 'client.samples(', 'client.labelCurves(', 'client.leaderboard(']) expect(page).toContain(call);
    expect(page).not.toMatch(/\bfetch\(|XMLHttpRequest|EventSource|\/api\//);
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
