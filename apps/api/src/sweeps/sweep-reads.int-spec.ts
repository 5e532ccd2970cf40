import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { apiEnvSchema } from '@ddae/config';
import { heatmapSchema, labelBudgetOf, sweepDetailSchema } from '@ddae/contracts';
import { LeaderboardRepository, SweepRepository, type PrismaClient } from '@ddae/db';
import { createTestDatabase, deleteQueueKeys, seedFinishedSweep, uniqueQueuePrefix, type FinishedSweep, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';
import { reply } from '../core/reply';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * `GET /api/sweeps/:id` as the API built it from row objects before Postgres built it as JSON text
 * (Prisma reads, a mapping, then {@link reply}: the contract's wire form). The one change: ties in
 * the old orders (probe tasks by run and noise level, baselines by data set and kind) are broken by
 * the protocol key, as the SQL does.
 */
async function detailFromRows(prisma: PrismaClient, sweepId: string) {
  const sweeps = new SweepRepository(prisma);
  const sweep = await sweeps.findById(sweepId);
  if (!sweep) throw new Error(`no sweep ${sweepId}`);
  const [progress, runs, probeTasks, baselines] = await Promise.all([
    sweeps.progress(sweepId),
    prisma.run.findMany({ where: { sweepId }, orderBy: { key: 'asc' } }),
    prisma.probeTask.findMany({ where: { sweepId }, orderBy: [{ runId: 'asc' }, { noiseLevel: 'asc' }, { protocolKey: 'asc' }] }),
    prisma.baseline.findMany({ where: { sweeps: { some: { sweepId } } }, orderBy: [{ dataset: 'asc' }, { kind: 'asc' }, { protocolKey: 'asc' }] }),
  ]);
  const runKey = new Map(runs.map((r) => [r.id, r.key]));
  return reply(sweepDetailSchema, {
    ...sweep,
    paused: sweep.pausedAt !== null,
    progress,
    runs: runs.map((r) => ({
      id: r.id, key: r.key, method: r.method, model: r.modelName, untrained: r.untrained, seed: r.seed, status: r.status, steps: r.steps,
      stepsDone: r.stepsDone, lastLoss: r.lastLoss, parameters: r.parameters, attempts: r.attempts, error: r.error,
      workerId: r.workerId, backend: r.backend, stoppedEarlyAt: r.stoppedEarlyAt, startedAt: r.startedAt, finishedAt: r.finishedAt,
      source: r.sourcePath === null ? null : { path: r.sourcePath, sha256: r.sourceSha256 },
    })),
    probeTasks: probeTasks.map((t) => ({
      id: t.id, run: runKey.get(t.runId), noiseLevel: t.noiseLevel, layers: t.layers, status: t.status,
      attempts: t.attempts, error: t.error, workerId: t.workerId, finishedAt: t.finishedAt,
    })),
    baselines: baselines.map((b) => ({
      id: b.id, kind: b.kind, dataset: b.dataset, protocolKey: b.protocolKey, labels: labelBudgetOf(b.labels), status: b.status, accuracy: b.accuracy,
      attempts: b.attempts, error: b.error, workerId: b.workerId, finishedAt: b.finishedAt,
    })),
  });
}

/** `GET /api/sweeps/:id/heatmap` as the API built it from the repository's row objects (method broken ties, as the SQL does). */
async function heatmapFromRows(prisma: PrismaClient, sweepId: string, labels: number | null) {
  const leaderboard = new LeaderboardRepository(prisma);
  const [cells, budgets] = await Promise.all([leaderboard.heatmap(sweepId, labels), leaderboard.budgets(sweepId)]);
  return reply(heatmapSchema, { sweepId, labels: labelBudgetOf(labels), budgets: budgets.map(labelBudgetOf), cells: cells.map((c) => ({ ...c, labels: labelBudgetOf(c.labels) })) });
}

describe('a sweep\'s status and heatmap, built by Postgres as JSON text (real Postgres)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let prefix: string;
  let sweep: FinishedSweep;
  let other: FinishedSweep;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = uniqueQueuePrefix('reads');
    const env = apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error', API_AUTH: 'off' });
    app = await createApiApp(env);
    await app.init();
    sweep = await seedFinishedSweep(db.prisma, { name: 'reads-fixture', labels: [20, 200], seeds: [0, 1, 2] });
    // Another sweep in the same tables: none of its rows may leak into the first one's replies.
    other = await seedFinishedSweep(db.prisma, { name: 'reads-other', seeds: [0] });
    // Every state a live sweep shows: a run still training (no finish, steps part done), one failed
    // with its error, one imported (its source), a NaN loss; probe tasks failed, running and queued.
    const run = (key: string) => sweep.runs[key];
    const p = db.prisma;
    await p.sweep.update({ where: { id: sweep.sweepId }, data: { status: 'RUNNING', finishedAt: null, pausedAt: new Date('2026-12-01T03:04:05.678Z'), idempotencyKey: 'reads-key', maxConcurrency: 3 } });
    await p.run.update({ where: { id: run('ddpm-small-s1') }, data: { status: 'RUNNING', stepsDone: 123, finishedAt: null, lastLoss: 0.1 + 0.2, workerId: 'w-"quoted"\\ünï' } });
    await p.run.update({ where: { id: run('ddpm-small-s2') }, data: { status: 'FAILED', error: 'loss is NaN at step 7\nline two\t"tab"', attempts: 3, stoppedEarlyAt: 7, sourcePath: 'models/x.safetensors', sourceSha256: null } });
    await p.$executeRaw`UPDATE runs SET last_loss = 'NaN' WHERE id = ${run('ddpm-small-s2')}::uuid`;
    await p.run.update({ where: { id: run('ddpm-small-untrained-s0') }, data: { sourcePath: 'models/y.safetensors', sourceSha256: 'a'.repeat(64), lastLoss: 1e-7 } });
    const tasks = await p.probeTask.findMany({ where: { sweepId: sweep.sweepId }, orderBy: [{ runId: 'asc' }, { noiseLevel: 'asc' }] });
    await p.probeTask.update({ where: { id: tasks[0].id }, data: { status: 'FAILED', error: 'out of memory', attempts: 2, workerId: 'w2' } });
    await p.probeTask.update({ where: { id: tasks[1].id }, data: { status: 'RUNNING', finishedAt: null, workerId: 'w3', attempts: 1 } });
    await p.probeTask.update({ where: { id: tasks[2].id }, data: { status: 'QUEUED', finishedAt: null, workerId: null, attempts: 0 } });
    const baseline = await p.baseline.findFirstOrThrow({ where: { sweeps: { some: { sweepId: sweep.sweepId } }, labels: 20 } });
    await p.baseline.update({ where: { id: baseline.id }, data: { status: 'FAILED', error: 'pixels: bad', accuracy: null } });
  });

  afterAll(async () => {
    await app?.close();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db?.drop();
  });

  it('answers GET /api/sweeps/:id field for field as the API did from row objects, in the same key order', async () => {
    const res = await http().get(`/api/sweeps/${sweep.sweepId}`).expect(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    const before = await detailFromRows(db.prisma, sweep.sweepId);
    expect(res.body).toEqual(before);
    expect(res.text).toBe(res.text.trim());
    expect(JSON.stringify(res.body)).toBe(JSON.stringify(before));
    // The contract, with nothing it does not name (zod strips unknown keys: equal means none).
    expect(sweepDetailSchema.parse(res.body)).toEqual(res.body);
    // What the fixture's states must show, so that the comparison above covers them.
    const body = sweepDetailSchema.parse(res.body);
    expect(body).toMatchObject({ status: 'RUNNING', paused: true, pausedAt: '2026-12-01T03:04:05.678Z', idempotencyKey: 'reads-key', maxConcurrency: 3, finishedAt: null });
    expect(body.runs.map((r) => r.status)).toEqual(['SUCCEEDED', 'RUNNING', 'FAILED', 'SUCCEEDED']);
    expect(body.runs[1]).toMatchObject({ stepsDone: 123, finishedAt: null, lastLoss: 0.1 + 0.2, workerId: 'w-"quoted"\\ünï' });
    expect(body.runs[2]).toMatchObject({ error: 'loss is NaN at step 7\nline two\t"tab"', lastLoss: null, source: { path: 'models/x.safetensors', sha256: null } });
    expect(body.runs[3]).toMatchObject({ untrained: true, lastLoss: 1e-7, source: { path: 'models/y.safetensors', sha256: 'a'.repeat(64) } });
    expect(body.runs[0].finishedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(body.progress.probeTasks).toEqual({ QUEUED: 1, RUNNING: 1, SUCCEEDED: body.probeTasks.length - 3, FAILED: 1, CANCELLED: 0 });
    expect(body.progress.runs).toMatchObject({ RUNNING: 1, FAILED: 1, SUCCEEDED: 2 });
    expect(body.baselines.map((b) => [b.labels, b.status])).toEqual(expect.arrayContaining([[20, 'FAILED'], [200, 'SUCCEEDED'], ['all', 'SUCCEEDED']]));
    expect(body.probeTasks.every((t) => Object.keys(sweep.runs).includes(t.run))).toBe(true);
  });

  it('answers a sweep with no tasks of a kind with empty lists and zero counts, and the other sweep with its own rows only', async () => {
    const res = await http().get(`/api/sweeps/${other.sweepId}`).expect(200);
    expect(res.body).toEqual(await detailFromRows(db.prisma, other.sweepId));
    expect(res.body.runs).toHaveLength(2);
    const bare = await db.prisma.sweep.create({ data: { name: 'bare', dataset: 'mnist', spec: { name: 'bare', nested: { a: [1, 2.5, null, 'x'] } }, specHash: 'h' } });
    const empty = await http().get(`/api/sweeps/${bare.id}`).expect(200);
    expect(empty.body).toEqual(await detailFromRows(db.prisma, bare.id));
    expect(empty.body).toMatchObject({ runs: [], probeTasks: [], baselines: [], spec: { name: 'bare', nested: { a: [1, 2.5, null, 'x'] } }, progress: { runs: { QUEUED: 0, steps: 0, stepsDone: 0 } } });
  });

  it('answers GET /api/sweeps/:id/heatmap at every label budget field for field as the API did from row objects', async () => {
    for (const [query, labels] of [['', null], ['?labels=all', null], ['?labels=20', 20], ['?labels=200', 200], ['?labels=5', 5]] as const) {
      const res = await http().get(`/api/sweeps/${sweep.sweepId}/heatmap${query}`).expect(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      const before = await heatmapFromRows(db.prisma, sweep.sweepId, labels);
      expect(res.body).toEqual(before);
      expect(JSON.stringify(res.body)).toBe(JSON.stringify(before));
      expect(heatmapSchema.parse(res.body)).toEqual(res.body);
    }
    const all = heatmapSchema.parse((await http().get(`/api/sweeps/${sweep.sweepId}/heatmap`).expect(200)).body);
    expect(all.budgets).toEqual([20, 200, 'all']);
    expect(all.cells.some((c) => c.untrained && c.modelName.endsWith(' (untrained)'))).toBe(true);
    expect(all.cells.every((c) => c.labels === 'all')).toBe(true);
    expect((await http().get(`/api/sweeps/${sweep.sweepId}/heatmap?labels=5`).expect(200)).body.cells).toEqual([]);
    // A sweep without results: no cells, no budgets.
    const bare = await db.prisma.sweep.create({ data: { name: 'bare-heatmap', dataset: 'mnist', spec: {}, specHash: 'h2' } });
    expect((await http().get(`/api/sweeps/${bare.id}/heatmap`).expect(200)).body).toEqual({ sweepId: bare.id, labels: 'all', budgets: [], cells: [] });
  });

  it('keeps the 404, the short ids and the 400 of both routes', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await http().get(`/api/sweeps/${unknown}`).expect(404)).body.message).toContain(unknown);
    expect((await http().get(`/api/sweeps/${unknown}/heatmap`).expect(404)).body.message).toContain(unknown);
    expect((await http().get(`/api/sweeps/${sweep.sweepId.slice(0, 8)}`).expect(200)).body.id).toBe(sweep.sweepId);
    expect((await http().get(`/api/sweeps/${sweep.sweepId.slice(0, 8)}/heatmap`).expect(200)).body.sweepId).toBe(sweep.sweepId);
    await http().get(`/api/sweeps/${sweep.sweepId}/heatmap?labels=zero`).expect(400);
    await http().get(`/api/sweeps/${sweep.sweepId}?bogus=1`).expect(400);
  });

  it('answers a conditional GET with 304 while the sweep is unchanged, and with the new body once a task moves', async () => {
    const first = await http().get(`/api/sweeps/${sweep.sweepId}`).expect(200);
    const etag = first.headers['etag'];
    expect(etag).toBeTruthy();
    await http().get(`/api/sweeps/${sweep.sweepId}`).set('if-none-match', etag).expect(304);
    const task = (first.body as { probeTasks: { id: string; status: string }[] }).probeTasks.find((t) => t.status === 'RUNNING');
    await db.prisma.probeTask.update({ where: { id: task?.id }, data: { status: 'SUCCEEDED', finishedAt: new Date() } });
    const moved = await http().get(`/api/sweeps/${sweep.sweepId}`).set('if-none-match', etag).expect(200);
    expect(moved.headers['etag']).not.toBe(etag);
    expect(moved.body.progress.probeTasks.RUNNING).toBe(0);
    const heat = await http().get(`/api/sweeps/${sweep.sweepId}/heatmap`).expect(200);
    await http().get(`/api/sweeps/${sweep.sweepId}/heatmap`).set('if-none-match', heat.headers['etag']).expect(304);
  });
});
