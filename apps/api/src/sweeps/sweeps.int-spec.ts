import type { INestApplication } from '@nestjs/common';
import fc from 'fast-check';
import request from 'supertest';
import { stringify } from 'yaml';
import { apiEnvSchema } from '@ddae/config';
import { QUEUES, type SweepSpecInput } from '@ddae/contracts';
import { ProgressProbeRepository, RunRepository } from '@ddae/db';
import { createTestDatabase, deleteQueueKeys, queuedJobIds, uniqueQueuePrefix, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Reads a streamed body as text (supertest would not parse text/event-stream). */
const textParser = (res: request.Response, done: (err: Error | null, body: unknown) => void) => {
  const stream = res as unknown as NodeJS.ReadableStream;
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => (text += chunk));
  stream.on('end', () => done(null, text));
};

function parseSse(text: string): { id: string; event: string; data: string }[] {
  return text
    .split('\n\n')
    .filter((block) => block.includes('data:'))
    .map((block) => {
      const field = (name: string) => block.split('\n').find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2) ?? '';
      return { id: field('id'), event: field('event'), data: field('data') };
    });
}

const spec = (): SweepSpecInput => ({
  name: 'int-test',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 10, batchSize: 4, seeds: [0, 1] },
  probe: { layers: 'all', timesteps: [5, 50], trainSize: 100, testSize: 50, epochs: 1 },
  baselines: ['pixels'],
});

describe('sweeps API (real Postgres and Redis)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let prefix: string;

  const jobs = () => queuedJobIds(REDIS_URL, prefix, QUEUES.compute);
  const rowCounts = async () => ({
    sweeps: await db.prisma.sweep.count(),
    runs: await db.prisma.run.count(),
    probeTasks: await db.prisma.probeTask.count(),
    baselines: await db.prisma.baseline.count(),
  });

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  beforeEach(async () => {
    prefix = uniqueQueuePrefix('api');
    const env = apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error', BODY_LIMIT: '64kb', API_AUTH: 'off' });
    app = await createApiApp(env);
    await app.init();
    await db.truncate('sweeps', 'baselines', 'workers');
  });

  afterEach(async () => {
    await app.close();
    await deleteQueueKeys(REDIS_URL, prefix);
  });

  afterAll(async () => {
    await db.drop();
  });

  it('stores a YAML spec with its plan in one go and enqueues the runs and baselines', async () => {
    const res = await request(app.getHttpServer()).post('/api/sweeps').set('content-type', 'application/yaml').send(stringify(spec())).expect(201);
    expect(res.body).toMatchObject({ name: 'int-test', status: 'QUEUED', created: true, counts: { runs: 2, probeTasks: 4, probeCells: 16, baselines: 1 } });
    expect(await rowCounts()).toEqual({ sweeps: 1, runs: 2, probeTasks: 4, baselines: 1 });
    const runs = await db.prisma.run.findMany({ orderBy: { key: 'asc' } });
    expect(runs.map((r) => r.key)).toEqual(['ddpm-tiny-s0', 'ddpm-tiny-s1']);
    const baseline = await db.prisma.baseline.findFirstOrThrow();
    expect(await jobs()).toEqual([`baseline-${baseline.id}`, ...runs.map((r) => `pretrain-${r.id}`)].sort());
  });

  it('answers a retried POST with the same Idempotency-Key with the same sweep and enqueues nothing new', async () => {
    const first = await request(app.getHttpServer()).post('/api/sweeps').set('idempotency-key', 'retry-1').send(spec()).expect(201);
    const jobsAfterFirst = await jobs();
    const again = await request(app.getHttpServer()).post('/api/sweeps').set('idempotency-key', 'retry-1').send(spec()).expect(200);
    expect(again.body).toMatchObject({ id: first.body.id, created: false });
    expect(await jobs()).toEqual(jobsAfterFirst);
    expect(await rowCounts()).toEqual({ sweeps: 1, runs: 2, probeTasks: 4, baselines: 1 });
    // Concurrent retries converge on one sweep too.
    const racing = await Promise.all([1, 2, 3].map(() => request(app.getHttpServer()).post('/api/sweeps').set('idempotency-key', 'race-1').send(spec())));
    expect(new Set(racing.map((r) => r.body.id)).size).toBe(1);
    expect(await db.prisma.sweep.count()).toBe(2);
    // The same key with another spec is a conflict, not a silent replay.
    const other = { ...spec(), name: 'another' };
    const conflict = await request(app.getHttpServer()).post('/api/sweeps').set('idempotency-key', 'retry-1').send(other).expect(409);
    expect(conflict.body.message).toContain('retry-1');
  });

  it('plans without storing anything on ?dryRun=true', async () => {
    const res = await request(app.getHttpServer()).post('/api/sweeps?dryRun=true').send(spec()).expect(200);
    expect(res.body.counts).toMatchObject({ runs: 2, probeTasks: 4 });
    expect(res.body.plan.probeTasks[0].layers).toEqual(['out_1', 'out_2', 'out_3', 'out_4']);
    expect(await rowCounts()).toEqual({ sweeps: 0, runs: 0, probeTasks: 0, baselines: 0 });
    expect(await jobs()).toEqual([]);
  });

  it('plans a DiT model on a dry run: its blocks are the layers', async () => {
    const body = { ...spec(), models: [{ method: 'ddpm', backbone: 'dit', dit: 'dit-tiny' }] };
    const res = await request(app.getHttpServer()).post('/api/sweeps?dryRun=true').send(body).expect(200);
    expect(res.body.plan.runs[0]).toMatchObject({ model: 'ddpm-dit-tiny', backbone: 'dit', dit: { depth: 4, width: 48, heads: 4, patch: 4 } });
    expect(res.body.plan.probeTasks[0].layers).toEqual(['blk_1', 'blk_2', 'blk_3', 'blk_4']);
  });

  type Mutate = (s: Record<string, any>) => void; // eslint-disable-line @typescript-eslint/no-explicit-any
  const badSpecs: [string, Mutate, string][] = [
    ['an unknown data set', (s) => (s.dataset = 'imagenet'), 'dataset'],
    ['a negative step count', (s) => (s.pretrain.steps = -5), 'pretrain.steps'],
    ['a string where a number belongs', (s) => (s.pretrain.batchSize = 'many'), 'pretrain.batchSize'],
    ['an unknown method', (s) => (s.models[0].method = 'gan'), 'models.0.method'],
    ['a bad UNet field', (s) => (s.models[0].unet = { baseChannels: 0, channelMults: [1, 2], blocksPerLevel: 1 }), 'models.0.unet.baseChannels'],
    ['groups that do not divide the channels', (s) => (s.models[0].unet = { baseChannels: 12, channelMults: [1, 2], blocksPerLevel: 1, groups: 8 }), 'models.0.unet.groups'],
    ['an unknown layer', (s) => (s.probe.layers = ['out_1', 'out_99']), 'probe.layers.1'],
    ['a missing noise grid', (s) => delete s.probe.timesteps, 'probe.timesteps'],
    ['a timestep out of range', (s) => (s.probe.timesteps = [5, 5000]), 'probe.timesteps.1'],
    ['more probe images than the data set has', (s) => (s.probe.trainSize = 70000), 'probe.trainSize'],
    ['an unknown field', (s) => (s.pretrain.stepz = 3), 'pretrain'],
    ['a missing section', (s) => delete s.pretrain, 'pretrain'],
    ['duplicate model names', (s) => s.models.push({ ...s.models[0] }), 'models.1.name'],
    ['probing during pretraining every 0 steps', (s) => (s.pretrain.progressProbe = { every: 0 }), 'pretrain.progressProbe.every'],
    ['probing during pretraining less often than the run is long', (s) => (s.pretrain.progressProbe = { every: 11 }), 'pretrain.progressProbe.every'],
    ['an unknown layer to probe during pretraining', (s) => (s.pretrain.progressProbe = { every: 5, layers: ['out_99'] }), 'pretrain.progressProbe.layers.0'],
    ['a progress-probe grid that is not small', (s) => (s.pretrain.progressProbe = { every: 5, timesteps: Array.from({ length: 9 }, (_, i) => i + 1) }), 'pretrain.progressProbe.timesteps'],
    ['an early stop without patience', (s) => (s.pretrain.progressProbe = { every: 5, earlyStop: { patience: 0 } }), 'pretrain.progressProbe.earlyStop.patience'],
    ['a negative early-stop min delta', (s) => (s.pretrain.progressProbe = { every: 5, earlyStop: { patience: 2, minDelta: -1 } }), 'pretrain.progressProbe.earlyStop.minDelta'],
    ['a DiT whose width heads do not divide', (s) => (s.models[0] = { method: 'ddpm', backbone: 'dit', dit: { depth: 2, width: 36, heads: 8, patch: 4 } }), 'models.0.dit.width'],
    ['a DiT patch that does not divide the image', (s) => (s.models[0] = { method: 'ddpm', backbone: 'dit', dit: { depth: 2, width: 32, heads: 4, patch: 5 } }), 'models.0.dit.patch'],
    ['a UNet layer for a DiT', (s) => {
      s.models[0] = { method: 'ddpm', backbone: 'dit', dit: 'dit-tiny' };
      s.probe.layers = ['blk_1', 'out_1'];
    }, 'probe.layers.1'],
    // 5 models x 32 seeds x 64 levels = 10,240 probe tasks, over SPEC_LIMITS.maxProbeTasks (8,192).
    ['a grid over the limit', (s) => (s.probe.timesteps = Array.from({ length: 64 }, (_, i) => i + 1)) && (s.pretrain.seeds = Array.from({ length: 32 }, (_, i) => i)) && (s.models = Array.from({ length: 5 }, (_, i) => ({ name: `base-${i}`, method: 'ddpm', unet: 'base' }))), 'probe'],
  ];

  it.each(badSpecs)('answers 400 naming the field for %s, and writes nothing', async (_label, mutate, path) => {
    const body = structuredClone(spec()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    mutate(body);
    const res = await request(app.getHttpServer()).post('/api/sweeps').send(body).expect(400);
    expect(res.body.error).toBe('invalid_spec');
    expect(res.body.issues.map((i: { path: string }) => i.path)).toContain(path);
    expect(await rowCounts()).toEqual({ sweeps: 0, runs: 0, probeTasks: 0, baselines: 0 });
    expect(await jobs()).toEqual([]);
  });

  it('rejects bodies that are not a spec document with a clear 4xx', async () => {
    const server = app.getHttpServer();
    const yaml = await request(server).post('/api/sweeps').set('content-type', 'application/yaml').send('name: [unclosed').expect(400);
    expect(yaml.body.issues[0].message).toMatch(/YAML/);
    const json = await request(server).post('/api/sweeps').set('content-type', 'application/json').send('{"name": ').expect(400);
    expect(json.body.message).toMatch(/malformed/);
    await request(server).post('/api/sweeps').set('content-type', 'text/plain').send('hello').expect(415);
    await request(server).post('/api/sweeps').send({ ...spec(), name: 'x'.repeat(70_000) }).expect(413);
    await request(server).post('/api/sweeps').send([1, 2]).expect(400);
    expect(await rowCounts()).toEqual({ sweeps: 0, runs: 0, probeTasks: 0, baselines: 0 });
  });

  it('shows a sweep with its progress, lists it, and cancels it', async () => {
    const server = app.getHttpServer();
    const { body } = await request(server).post('/api/sweeps').send(spec()).expect(201);
    const view = await request(server).get(`/api/sweeps/${body.id}`).expect(200);
    expect(view.body).toMatchObject({ id: body.id, status: 'QUEUED', progress: { runs: { QUEUED: 2, steps: 20, stepsDone: 0 }, probeTasks: { QUEUED: 4 } } });
    expect(view.body.runs).toHaveLength(2);
    const list = await request(server).get('/api/sweeps?limit=5').expect(200);
    expect(list.body.sweeps.map((s: { id: string }) => s.id)).toEqual([body.id]);
    await request(server).get('/api/sweeps/not-a-uuid').expect(400);
    await request(server).get('/api/sweeps/00000000-0000-4000-8000-000000000000').expect(404);
    await request(server).get('/api/sweeps?limit=0').expect(400);

    const cancelled = await request(server).post(`/api/sweeps/${body.id}/cancel`).expect(200);
    expect(cancelled.body.status).toBe('CANCELLED');
    expect(await db.prisma.run.count({ where: { status: 'CANCELLED' } })).toBe(2);
    // Queued pretraining jobs are gone; the shared baseline stays for other sweeps.
    expect((await jobs()).filter((id) => id.startsWith('pretrain-'))).toEqual([]);
  });

  it('plans probing during pretraining into the runs, and serves accuracy against step with the early stop', async () => {
    const server = app.getHttpServer();
    const withProgress = { ...spec(), pretrain: { ...spec().pretrain, progressProbe: { every: 5, layers: ['out_1', 'out_2'], earlyStop: { patience: 1 } } } };
    const dry = await request(server).post('/api/sweeps?dryRun=true').send(withProgress).expect(200);
    expect(dry.body.plan.runs[0].progressProbe).toMatchObject({ every: 5, noiseLevels: [5], layers: ['out_1', 'out_2'] });
    const { body } = await request(server).post('/api/sweeps').send(withProgress).expect(201);
    const [stopped, other] = await db.prisma.run.findMany({ orderBy: { key: 'asc' } });
    expect(stopped.hyper).toMatchObject({ progressProbe: { every: 5, noiseLevels: [5], layers: ['out_1', 'out_2'], earlyStop: { patience: 1, minDelta: 0.002 }, protocol: { probe: 'fast', noise: 'fixed', trainSize: 2000, testSize: 1000, epochs: 5 } } });
    const progressProbes = new ProgressProbeRepository(db.prisma);
    const context = { protocol: { probe: 'fast' }, protocolKey: 'k', backend: 'wasm', workerId: 'w' };
    const cells = (a: number, b: number) => [{ layer: 'out_1', noiseLevel: 5, accuracy: a, featureDim: 16 }, { layer: 'out_2', noiseLevel: 5, accuracy: b, featureDim: 8 }];
    await progressProbes.record(stopped.id, { step: 5, cells: cells(0.3, 0.4) }, context);
    // A resumed job reports step 5 again: same rows.
    await progressProbes.record(stopped.id, { step: 5, cells: cells(0.3, 0.4) }, context);
    // Step 10 names its device (the run's); step 5 stands for a point recorded before devices were.
    await progressProbes.record(stopped.id, { step: 10, cells: cells(0.35, 0.38) }, { ...context, device: 'cpu' });
    const runs = new RunRepository(db.prisma);
    await runs.claim(stopped.id, { workerId: 'w', backend: 'wasm' });
    expect(await runs.complete(stopped.id, { step: 10, path: 'runs/x/step-10', sha256: 'abc' }, { stoppedEarly: true })).toBe(true);

    const res = await request(server).get(`/api/sweeps/${body.id}/progress`).expect(200);
    expect(res.body).toEqual({
      sweepId: body.id,
      runs: [
        {
          runId: stopped.id, run: 'ddpm-tiny-s0', model: 'ddpm-tiny', method: 'ddpm', seed: 0, status: 'SUCCEEDED', steps: 10, stepsDone: 10, every: 5, stoppedEarlyAt: 10,
          points: [
            { step: 5, accuracy: 0.4, device: null, cells: cells(0.3, 0.4) },
            { step: 10, accuracy: 0.38, device: 'cpu', cells: cells(0.35, 0.38) },
          ],
        },
        { runId: other.id, run: 'ddpm-tiny-s1', model: 'ddpm-tiny', method: 'ddpm', seed: 1, status: 'QUEUED', steps: 10, stepsDone: 0, every: 5, stoppedEarlyAt: null, points: [] },
      ],
    });
    expect((await request(server).get(`/api/sweeps/${body.id}`).expect(200)).body.runs[0]).toMatchObject({ stoppedEarlyAt: 10 });
    await request(server).get('/api/sweeps/not-a-uuid/progress').expect(400);
    await request(server).get('/api/sweeps/00000000-0000-4000-8000-000000000000/progress').expect(404);
    // The story as events: one per new probed step, and the early stop before the run's success.
    const events = await db.prisma.sweepEvent.findMany({ where: { sweepId: body.id, type: { startsWith: 'run.' } }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['run.progress-probe', 'run.progress-probe', 'run.started', 'run.stopped-early', 'run.succeeded']);
    expect(events[0].data).toMatchObject({ run: 'ddpm-tiny-s0', step: 5, accuracy: 0.4, layer: 'out_2' });
  });

  it('pauses a sweep (its queued work leaves the queue, claims are refused) and resumes it', async () => {
    const server = app.getHttpServer();
    const { body } = await request(server).post('/api/sweeps').send(spec()).expect(201);
    const runs = await db.prisma.run.findMany({ orderBy: { key: 'asc' } });
    const baseline = await db.prisma.baseline.findFirstOrThrow();
    expect((await request(server).post(`/api/sweeps/${body.id}/pause`).expect(200)).body).toMatchObject({ paused: true });
    expect(await jobs()).toEqual([`baseline-${baseline.id}`]);
    // A job that was already handed out is refused at its claim.
    const runsRepo = new RunRepository(db.prisma);
    expect(await runsRepo.claim(runs[0].id, { workerId: 'w', backend: 'wasm' })).toBeNull();
    expect((await request(server).get(`/api/sweeps/${body.id}`).expect(200)).body).toMatchObject({ paused: true, status: 'QUEUED' });

    expect((await request(server).post(`/api/sweeps/${body.id}/resume`).expect(200)).body).toMatchObject({ paused: false });
    expect(await jobs()).toEqual([`baseline-${baseline.id}`, ...runs.map((r) => `pretrain-${r.id}`)].sort());
    expect(await runsRepo.claim(runs[0].id, { workerId: 'w', backend: 'wasm' })).not.toBeNull();
    await request(server).post('/api/sweeps/00000000-0000-4000-8000-000000000000/pause').expect(404);
  });

  it('reruns exactly the failed cells on retry-failed', async () => {
    const server = app.getHttpServer();
    const { body } = await request(server).post('/api/sweeps').send(spec()).expect(201);
    const [failedRun, okRun] = await db.prisma.run.findMany({ orderBy: { key: 'asc' } });
    // One run failed for good (its probe tasks with it); the other is still training.
    await db.prisma.run.update({ where: { id: failedRun.id }, data: { status: 'FAILED', error: 'NonFiniteLossError: loss is NaN' } });
    await db.prisma.probeTask.updateMany({ where: { runId: failedRun.id }, data: { status: 'FAILED', error: 'pretraining run failed' } });
    await db.prisma.run.update({ where: { id: okRun.id }, data: { status: 'RUNNING' } });
    await deleteQueueKeys(REDIS_URL, prefix);

    const res = await request(server).post(`/api/sweeps/${body.id}/retry-failed`).expect(200);
    expect(res.body.retried).toEqual({ runs: 1, probeTasks: 0, baselines: 0 });
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: failedRun.id } })).toMatchObject({ status: 'QUEUED', error: null });
    expect(await db.prisma.probeTask.count({ where: { runId: failedRun.id, status: 'QUEUED' } })).toBe(2);
    expect((await db.prisma.run.findUniqueOrThrow({ where: { id: okRun.id } })).status).toBe('RUNNING');
    // Only the failed run's job is back; its probes follow when it succeeds.
    expect(await jobs()).toEqual([`pretrain-${failedRun.id}`]);
    // Nothing failed any more: a second call retries nothing.
    expect((await request(server).post(`/api/sweeps/${body.id}/retry-failed`).expect(200)).body.retried).toEqual({ runs: 0, probeTasks: 0, baselines: 0 });

    await request(server).post(`/api/sweeps/${body.id}/cancel`).expect(200);
    await request(server).post(`/api/sweeps/${body.id}/retry-failed`).expect(409);
    await request(server).post('/api/sweeps/00000000-0000-4000-8000-000000000000/retry-failed').expect(404);
  });

  it('streams a sweep\'s events from Postgres and resumes after Last-Event-ID', async () => {
    const server = app.getHttpServer();
    const { body } = await request(server).post('/api/sweeps').send(spec()).expect(201);
    await request(server).post(`/api/sweeps/${body.id}/cancel`).expect(200);
    // The sweep is finished: the stream replays everything and ends.
    const all = await request(server).get(`/api/sweeps/${body.id}/events`).buffer(true).parse(textParser).expect(200);
    expect(all.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = parseSse(all.body as string);
    expect(events.map((e) => e.event)).toEqual(['sweep.submitted', 'sweep.status']);
    expect(JSON.parse(events[1].data)).toMatchObject({ status: 'CANCELLED' });
    const resumed = await request(server).get(`/api/sweeps/${body.id}/events`).set('last-event-id', events[0].id).buffer(true).parse(textParser).expect(200);
    expect(parseSse(resumed.body as string).map((e) => e.id)).toEqual([events[1].id]);
    await request(server).get(`/api/sweeps/${body.id}/events?after=x`).expect(400);
    await request(server).get('/api/sweeps/00000000-0000-4000-8000-000000000000/events').expect(404);
  });

  it('answers malformed specs of every kind with 4xx, never 5xx, and writes nothing (property test)', async () => {
    const server = app.getHttpServer();
    const base = spec() as Record<string, unknown>;
    // Arbitrary JSON, and the valid spec with one field replaced by an arbitrary value.
    const field = fc.constantFrom('name', 'dataset', 'models', 'pretrain', 'probe', 'baselines', 'priority', 'maxConcurrency');
    const mutated = fc.tuple(field, fc.jsonValue()).map(([k, v]) => ({ ...base, [k]: v }));
    const huge = fc.integer({ min: 2, max: 5000 }).map((n) => ({ ...base, probe: { ...(base.probe as object), timesteps: Array.from({ length: n }, (_, i) => (i % 1000) + 1) } }));
    const nested = fc.tuple(fc.constantFrom('steps', 'batchSize', 'seeds', 'learningRate', 'trainSize'), fc.jsonValue()).map(([k, v]) => ({ ...base, pretrain: { ...(base.pretrain as object), [k]: v } }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue(), mutated, huge, nested), async (body) => {
        const res = await request(server).post('/api/sweeps?dryRun=true').set('content-type', 'application/json').send(JSON.stringify(body));
        return res.status < 500;
      }),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue(), mutated, nested), async (body) => {
        const res = await request(server).post('/api/sweeps').set('content-type', 'application/json').send(JSON.stringify(body));
        if (res.status >= 500) return false;
        // A mutation that happens to be valid is stored; drop it so that every 4xx can be checked
        // to have written nothing.
        if (res.status === 201) {
          await db.truncate('sweeps', 'baselines');
          return true;
        }
        return res.status >= 400 && (await db.prisma.sweep.count()) === 0;
      }),
      { numRuns: 150 },
    );
    expect(await db.prisma.sweep.count()).toBe(0);
  });

  it('serves health and the OpenAPI document', async () => {
    const server = app.getHttpServer();
    expect((await request(server).get('/health').expect(200)).body).toEqual({ status: 'ok', postgres: 'up', redis: 'up' });
    const doc = await request(server).get('/api/docs/openapi.json').expect(200);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/api/sweeps', '/api/sweeps/{id}', '/api/sweeps/{id}/cancel', '/api/leaderboard', '/api/workers']));
  });
});
