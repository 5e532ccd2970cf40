import type { INestApplication } from '@nestjs/common';
import type { Express } from 'express';
import request from 'supertest';
import { z } from 'zod';
import { ApiClient, ApiContractError, ApiRequestError } from '@ddae/api-client';
import { apiEnvSchema } from '@ddae/config';
import { API_OPERATIONS, apiErrorSchema, buildOpenApiDocument, errorStatusesOf, type ApiOperation } from '@ddae/contracts';
import { TokenRepository } from '@ddae/db';
import { createTestDatabase, deleteQueueKeys, seedFinishedSweep, seedGenerationQuality, uniqueQueuePrefix, type FinishedSweep, type TestDatabase } from '@ddae/testing';
import { createApiApp } from './bootstrap';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SPEC = { name: 'contract', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 5 }, probe: { timesteps: [5] } };

/** Every route the Express app behind Nest answers, as `GET /api/sweeps/:id`. */
function registeredRoutes(app: INestApplication): string[] {
  const express = app.getHttpAdapter().getInstance() as Express;
  const stack = (express.router as unknown as { stack: { route?: { path: string; methods: Record<string, boolean> } }[] }).stack;
  return stack.flatMap((layer) => (layer.route ? Object.keys(layer.route.methods).filter((m) => m !== '_all').map((m) => `${m.toUpperCase()} ${layer.route?.path}`) : []));
}

const byId = (id: string): ApiOperation => {
  const op = API_OPERATIONS.find((o) => o.operationId === id);
  if (!op) throw new Error(`no operation ${id}`);
  return op;
};

/** Parses a real response with the schema its operation declares for that status (the error shape for an error). */
function parseAs(op: ApiOperation, res: request.Response): unknown {
  const declared = op.responses[res.status];
  if (declared && 'schema' in declared) return declared.schema.parse(res.body);
  expect(errorStatusesOf(op)).toContain(res.status);
  return apiErrorSchema.parse(res.body);
}

describe('the wire contract (real Postgres and Redis)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let prefix: string;
  let sweep: FinishedSweep;
  let reader: string;
  let submitter: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = uniqueQueuePrefix('contract');
    app = await createApiApp(apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error', BODY_LIMIT: '16kb', API_AUTH: 'writes' }));
    await app.listen(0, '127.0.0.1');
    sweep = await seedFinishedSweep(db.prisma);
    const tokens = new TokenRepository(db.prisma);
    reader = (await tokens.create('reader', 'read')).token;
    submitter = (await tokens.create('submitter', 'submit')).token;
  });

  afterAll(async () => {
    await app.close();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db.drop();
  });

  it('documents every route the app registers, and registers every documented operation', () => {
    const routes = registeredRoutes(app).filter((r) => !r.includes('/api/docs'));
    const documented = API_OPERATIONS.map((op) => `${op.method.toUpperCase()} ${op.path.replace(/\{(\w+)\}/g, ':$1')}`);
    expect([...new Set(routes)].sort()).toEqual([...documented].sort());
    const doc = buildOpenApiDocument() as { paths: Record<string, Record<string, unknown>> };
    for (const op of API_OPERATIONS) expect(doc.paths[op.path]?.[op.method]).toBeDefined();
  });

  it('every JSON response of a finished sweep parses with its schema', async () => {
    const server = app.getHttpServer();
    const id = sweep.sweepId;
    // FID and KID of every run (what a worker stores with pretrain.fid), so the leaderboard rows carry them.
    await seedGenerationQuality(db.prisma, sweep, { fid: 42.25, workerId: 'w-contract' });
    const reads: [string, string][] = [
      ['health', '/health'],
      ['listSweeps', '/api/sweeps'],
      ['getSweep', `/api/sweeps/${id}`],
      ['getSweep', `/api/sweeps/${id.slice(0, 8)}`],
      ['sweepHeatmap', `/api/sweeps/${id}/heatmap`],
      ['sweepVerdict', `/api/sweeps/${id}/verdict`],
      ['sweepLoss', `/api/sweeps/${id}/loss`],
      ['sweepSamples', `/api/sweeps/${id}/samples`],
      ['sweepGeneration', `/api/sweeps/${id}/generation`],
      ['sweepProgress', `/api/sweeps/${id}/progress`],
      ['leaderboard', '/api/leaderboard'],
      ['leaderboard', '/api/leaderboard?per=run&limit=2'],
      ['leaderboard', `/api/leaderboard?per=config&sweep=${id}`],
      ['listWorkers', '/api/workers'],
    ];
    for (const [op, path] of reads) {
      const res = await request(server).get(path);
      expect([path, res.status]).toEqual([path, 200]);
      parseAs(byId(op), res);
    }
    const detail = byId('getSweep').responses[200];
    if (!('schema' in detail)) throw new Error('getSweep declares a JSON body');
    const parsed = detail.schema.parse((await request(server).get(`/api/sweeps/${id}`)).body) as { runs: unknown[]; probeTasks: unknown[]; baselines: unknown[] };
    expect(parsed.runs.length).toBeGreaterThan(0);
    expect(parsed.probeTasks.length).toBeGreaterThan(0);
    expect(parsed.baselines.length).toBeGreaterThan(0);
    const board = (await request(server).get('/api/leaderboard')).body as { rows: unknown[]; baselines: unknown[] };
    expect(board.rows.length).toBeGreaterThan(0);
    // Generation quality sits beside each run row's accuracy, never folded into it.
    const perRun = byId('leaderboard').responses[200];
    if (!('schema' in perRun)) throw new Error('leaderboard declares a JSON body');
    const runRows = (perRun.schema.parse((await request(server).get(`/api/leaderboard?per=run&sweep=${id}`)).body) as { rows: { runKey: string; accuracy: number; generation?: { fid: number } }[] }).rows;
    expect(runRows.length).toBeGreaterThan(0);
    for (const row of runRows) expect(row.generation?.fid).toBe(row.runKey.includes('untrained') ? 310.5 : 42.25);
    const served = (await request(server).get(`/api/sweeps/${id}/generation`)).body as { runs: { run: string; untrained: boolean; fid: number }[] };
    expect(served.runs.map((r) => [r.run, r.untrained, r.fid]).sort()).toEqual(Object.keys(sweep.runs).map((k) => [k, k.includes('untrained'), k.includes('untrained') ? 310.5 : 42.25]).sort());
    expect(board.baselines.length).toBeGreaterThan(0);

    const auth = { authorization: `Bearer ${submitter}` };
    const dry = await request(server).post('/api/sweeps?dryRun=true').set(auth).send(SPEC).expect(200);
    parseAs(byId('submitSweep'), dry);
    const created = await request(server).post('/api/sweeps').set(auth).set('idempotency-key', 'contract-1').send(SPEC).expect(201);
    parseAs(byId('submitSweep'), created);
    parseAs(byId('submitSweep'), await request(server).post('/api/sweeps').set(auth).set('idempotency-key', 'contract-1').send(SPEC).expect(200));
    for (const action of ['pause', 'resume', 'retry-failed', 'cancel'] as const) {
      const op = byId({ pause: 'pauseSweep', resume: 'resumeSweep', 'retry-failed': 'retryFailed', cancel: 'cancelSweep' }[action]);
      parseAs(op, await request(server).post(`/api/sweeps/${created.body.id}/${action}`).set(auth));
    }
  });

  it('answers every error status with the one error shape', async () => {
    const server = app.getHttpServer();
    const submit = byId('submitSweep');
    const cases: [ApiOperation, request.Test, number][] = [
      [byId('leaderboard'), request(server).get('/api/leaderboard?limit=0'), 400],
      [submit, request(server).post('/api/sweeps').send(SPEC), 401],
      [submit, request(server).post('/api/sweeps').set('authorization', `Bearer ${reader}`).send(SPEC), 403],
      [byId('getSweep'), request(server).get('/api/sweeps/00000000-0000-4000-8000-000000000000'), 404],
      [submit, request(server).post('/api/sweeps').set('authorization', `Bearer ${submitter}`).set('idempotency-key', 'contract-2').send(SPEC), 201],
      [submit, request(server).post('/api/sweeps').set('authorization', `Bearer ${submitter}`).set('idempotency-key', 'contract-2').send({ ...SPEC, name: 'other' }), 409],
      [submit, request(server).post('/api/sweeps').set('authorization', `Bearer ${submitter}`).send({ ...SPEC, name: 'x'.repeat(20_000) }), 413],
      [submit, request(server).post('/api/sweeps').set('authorization', `Bearer ${submitter}`).set('content-type', 'text/plain').send('hello'), 415],
    ];
    for (const [op, req, status] of cases) {
      const res = await req;
      expect(res.status).toBe(status);
      const body = parseAs(op, res) as { statusCode?: number };
      if (status >= 400) expect(body.statusCode).toBe(status);
    }
  });

  it.each([
    ['?dataset[]=fashion-mnist', 'query.dataset[]'],
    ['?dataset[$ne]=mnist', 'query.dataset[$ne]'],
    ['?dataset=mnist&dataset=cifar10', 'query.dataset'],
    ['?bogus=1', 'query.bogus'],
  ])('GET /api/leaderboard%s is a 400 naming %s', async (query, path) => {
    const res = await request(app.getHttpServer()).get(`/api/leaderboard${query}`).expect(400);
    expect(apiErrorSchema.parse(res.body).issues?.map((i) => i.path)).toEqual([path]);
  });

  it('refuses a query parameter an operation does not take, and leaves the page its own query string', async () => {
    const server = app.getHttpServer();
    const res = await request(server).get(`/api/sweeps/${sweep.sweepId}?verbose=1`).expect(400);
    expect(res.body.issues).toEqual([{ path: 'query.verbose', message: 'unknown query parameter "verbose": it takes no query parameters' }]);
    await request(server).get('/api/sweeps?status=FAILED&status=QUEUED').expect(400);
    await request(server).get('/?dataset=mnist&sort=acc-desc').expect(200);
    expect(z.string().parse((await request(server).get('/api/docs/openapi.json').expect(200)).body.openapi)).toBe('3.1.0');
  });

  it('the client library reads every operation through its schema and names what it does not understand', async () => {
    const address = app.getHttpServer().address() as { port: number };
    const client = new ApiClient(`http://127.0.0.1:${address.port}`, { token: submitter });
    const id = sweep.sweepId;
    expect((await client.health()).status).toBe('ok');
    expect((await client.getSweep(id.slice(0, 8))).id).toBe(id);
    expect((await client.listSweeps({ limit: 1 })).sweeps).toHaveLength(1);
    expect((await client.heatmap(id)).cells.length).toBeGreaterThan(0);
    expect((await client.verdict(id)).best).not.toBeNull();
    expect((await client.loss(id)).runs.length).toBeGreaterThan(0);
    expect(Array.isArray((await client.generation(id)).runs)).toBe(true);
    const { samples } = await client.samples(id);
    expect((await client.samplePng(id, samples[0].run)).subarray(1, 4).toString()).toBe('PNG');
    expect((await client.progress(id)).runs.length).toBeGreaterThan(0);
    expect((await client.leaderboard({ per: 'config', sweep: id, limit: 3 })).rows).toHaveLength(3);
    expect((await client.workers()).workers).toEqual([]);
    expect(await (await client.results(id, 'csv')).text()).toMatch(/^[a-z_]+,/);
    const submitted = await client.submitSweep({ json: SPEC }, { idempotencyKey: 'client-1' });
    expect(submitted).toMatchObject({ created: true, queued: true });
    expect((await client.dryRunSweep({ text: 'name: y\ndataset: mnist\nmodels: [{ method: ddpm, unet: tiny }]\npretrain: { steps: 5 }\nprobe: { timesteps: [5] }\n', contentType: 'application/yaml' })).dryRun).toBe(true);
    expect((await client.cancel(submitted.id)).status).toBe('CANCELLED');

    const missing = await client.getSweep('00000000-0000-4000-8000-000000000000').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiRequestError);
    // Each error names the call that failed (a page shows it in the panel that made it).
    expect(missing).toMatchObject({ status: 404, body: { error: 'not_found' }, endpoint: 'GET /api/sweeps/00000000-0000-4000-8000-000000000000' });
    const bad = await client.leaderboard({ limit: 0 }).catch((e: unknown) => e);
    expect((bad as ApiRequestError).message).toContain('query.limit');
    // A body the client's schema does not describe is an error naming the field, never a silent cast.
    await expect(client.call(z.object({ sweeps: z.array(z.object({ nope: z.string() })) }), 'GET', '/api/sweeps')).rejects.toThrow(ApiContractError);
    await expect(client.call(z.object({ sweeps: z.array(z.object({ nope: z.string() })) }), 'GET', '/api/sweeps')).rejects.toThrow(/sweeps\.0\.nope/);
    await expect(client.call(z.object({ sweeps: z.array(z.object({ nope: z.string() })) }), 'GET', '/api/sweeps?limit=1')).rejects.toMatchObject({ endpoint: 'GET /api/sweeps?limit=1' });
    expect(await new ApiClient('http://127.0.0.1:1').health().catch((e: unknown) => e)).toMatchObject({ status: 0, endpoint: 'GET /health' });
  });
});
