import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { apiEnvSchema } from '@ddae/config';
import { QUEUES, SPEC_LIMITS } from '@ddae/contracts';
import { createTestDatabase, deleteQueueKeys, queuedJobIds, uniqueQueuePrefix, waitFor, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The largest sweep the limits allow in rows: SPEC_LIMITS.maxRuns runs (40 models x 25 seeds), 8 noise levels of every layer (4) each: 8,000 probe tasks, 32,000 cells. */
const largest = (name = 'largest', levels = 8) => {
  const seeds = 25;
  const models = SPEC_LIMITS.maxRuns / seeds;
  return {
    name,
    dataset: 'fashion-mnist',
    models: Array.from({ length: models }, (_, i) => ({ name: `tiny-${i}`, method: 'ddpm', unet: 'tiny' })),
    pretrain: { steps: 10, seeds: Array.from({ length: seeds }, (_, i) => i) },
    probe: { layers: 'all', timesteps: Array.from({ length: levels }, (_, i) => 1 + 15 * i), trainSize: 100, testSize: 50, epochs: 1 },
    baselines: [],
  };
};

describe('sweeps API at the limits (real Postgres and Redis)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let prefix: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = uniqueQueuePrefix('scale');
    const env = apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error', BODY_LIMIT: '1mb', API_AUTH: 'off' });
    app = await createApiApp(env);
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db.drop();
  });

  it('a dry run of a big plan answers its counts and the first 200 rows of each kind, saying so; a small plan lists every row as before', async () => {
    const server = app.getHttpServer();
    const big = await request(server).post('/api/sweeps?dryRun=true').send(largest()).expect(200);
    expect(big.body.counts).toMatchObject({ runs: 1000, probeTasks: 8000, probeCells: 32_000 });
    expect(big.body.plan.runs).toHaveLength(200);
    expect(big.body.plan.probeTasks).toHaveLength(200);
    expect(big.body.plan.probeTasks[0]).toEqual({ run: 'tiny-0-s0', noiseLevel: 1, layers: ['out_1', 'out_2', 'out_3', 'out_4'], labels: ['all'] });
    expect(big.body.plan.sampled).toEqual({ runs: { shown: 200, of: 1000 }, probeTasks: { shown: 200, of: 8000 } });
    const small = { ...largest('small'), models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 10, seeds: [0, 1] }, probe: { ...largest().probe, timesteps: [5, 50] } };
    const dry = await request(server).post('/api/sweeps?dryRun=true').send({ ...small, probe: { ...small.probe, layers: ['out_1'] } }).expect(200);
    expect(Object.keys(dry.body.plan).sort()).toEqual(['baselines', 'probeTasks', 'runs']);
    expect(dry.body.plan.probeTasks).toEqual([
      { run: 'ddpm-tiny-s0', noiseLevel: 5, layers: ['out_1'], labels: ['all'] },
      { run: 'ddpm-tiny-s0', noiseLevel: 50, layers: ['out_1'], labels: ['all'] },
      { run: 'ddpm-tiny-s1', noiseLevel: 5, layers: ['out_1'], labels: ['all'] },
      { run: 'ddpm-tiny-s1', noiseLevel: 50, layers: ['out_1'], labels: ['all'] },
    ]);
    // One run too many, or one cell too many: refused with the field to fix.
    const tooMany = await request(server).post('/api/sweeps?dryRun=true').send({ ...largest(), models: [...largest().models, { name: 'one-more', method: 'ddpm', unet: 'tiny' }] }).expect(400);
    expect(tooMany.body.issues).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'pretrain.seeds' })]));
    const tooManyTasks = await request(server).post('/api/sweeps?dryRun=true').send(largest('tasks', 9)).expect(400);
    expect(tooManyTasks.body.issues).toEqual([{ path: 'probe', message: expect.stringContaining('9000 probe tasks (runs x noise levels) exceed the limit of 8192') }]);
    expect(await db.prisma.sweep.count()).toBe(0);
  });

  it('stores the largest allowed sweep whole (batched inserts): every run, every probe task with its run, layers and protocol, every pretraining job', async () => {
    const res = await request(app.getHttpServer()).post('/api/sweeps').send(largest());
    // 202 when Redis took longer than the submit waits (a loaded machine): the jobs still arrive.
    expect([201, 202]).toContain(res.status);
    expect(res.body).toMatchObject({ created: true, counts: { runs: 1000, probeTasks: 8000, probeCells: 32_000 } });
    const runs = await db.prisma.run.findMany({ where: { sweepId: res.body.id }, select: { id: true, key: true } });
    expect(runs).toHaveLength(1000);
    expect(new Set(runs.map((r) => r.key)).size).toBe(1000);
    const perRun = await db.prisma.probeTask.groupBy({ by: ['runId'], where: { sweepId: res.body.id }, _count: { _all: true }, _min: { noiseLevel: true }, _max: { noiseLevel: true } });
    expect(perRun).toHaveLength(1000);
    expect(perRun.every((r) => r._count._all === 8 && r._min.noiseLevel === 1 && r._max.noiseLevel === 1 + 15 * 7)).toBe(true);
    const task = await db.prisma.probeTask.findFirstOrThrow({ where: { sweepId: res.body.id, run: { key: 'tiny-39-s24' }, noiseLevel: 16 } });
    expect(task).toMatchObject({ layers: ['out_1', 'out_2', 'out_3', 'out_4'], status: 'QUEUED', attempts: 0, protocol: expect.objectContaining({ trainSize: 100, testSize: 50, epochs: 1 }) });
    expect(task.protocolKey).toContain('n=100/50');
    const pretrainJobs = async () => (await queuedJobIds(REDIS_URL, prefix, QUEUES.compute)).filter((id) => id.startsWith('pretrain-')).sort();
    await waitFor('1000 pretraining jobs in the queue', async () => ((await pretrainJobs()).length === 1000 ? true : undefined), { timeoutMs: 60_000 });
    expect(await pretrainJobs()).toEqual(runs.map((r) => `pretrain-${r.id}`).sort());
  }, 180_000);
});
