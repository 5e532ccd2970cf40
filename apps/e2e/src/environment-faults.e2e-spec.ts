import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { QUEUES, type WorkerView } from '@ddae/contracts';
import { redisConnection } from '@ddae/queue';
import { freePort, waitFor } from '@ddae/testing';
import { REDIS_URL, startStack, type Stack } from './stack';

/** Tiny: a checkpoint every 10 of 20 steps (the broken worker meets its fault at the first one at the latest). */
const SWEEP = {
  name: 'e2e-env-fault',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 20, batchSize: 8, checkpointEvery: 10, trainSize: 64, seeds: [0], samples: false },
  probe: { layers: ['out_4'], timesteps: [10], epochs: 2, batchSize: 64, learningRate: 0.01, trainSize: 128, testSize: 64 },
  baselines: [],
};

/**
 * A sweep never fails because one machine is misconfigured (apps/worker/src/core/environment-fault.ts):
 * worker 1's ARTIFACT_DIR passes its start-up check, then becomes a regular file (a fault that bites
 * root too). Its job is handed back unspent, it turns unhealthy (saying why) and takes no more jobs;
 * worker 2, healthy, does all the work. A run whose stored network does not parse fails at once.
 */
describe('an environment fault on one worker, end to end with two real workers', () => {
  let stack: Stack;
  let root: string;
  let brokenArtifacts: string;
  let healthPort: number;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'ddae-env-fault-'));
    brokenArtifacts = path.join(root, 'artifacts');
    mkdirSync(brokenArtifacts);
    healthPort = await freePort();
    stack = await startStack({ workers: 1, workerEnv: { ARTIFACT_DIR: brokenArtifacts, HEALTH_PORT: String(healthPort) } });
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const worker = async (id: string): Promise<WorkerView | undefined> => (await stack.client.workers()).workers.find((w) => w.id === id);

  it('the broken worker hands its job back unspent, turns unhealthy and stops; the sweep succeeds on the healthy one', async () => {
    await waitFor('worker 1 to be idle', async () => (await worker('e2e-worker-1'))?.state === 'idle' || undefined, { timeoutMs: 120_000, describe: async () => stack.logs() });
    // The directory becomes a regular file after the start-up check passed.
    rmSync(brokenArtifacts, { recursive: true });
    writeFileSync(brokenArtifacts, 'not a directory');

    const body = await stack.submit(SWEEP);
    const unhealthy = await waitFor('worker 1 to turn unhealthy', async () => {
      const w = await worker('e2e-worker-1');
      return w?.state === 'unhealthy' ? w : undefined;
    }, { timeoutMs: 120_000, intervalMs: 200, describe: async () => stack.logs() });
    expect(unhealthy.unhealthyReason).toMatch(new RegExp(`^ARTIFACT_DIR ${brokenArtifacts} cannot be written \\(ENOTDIR on ${brokenArtifacts}/runs/`));

    // Two sweeps that reach the workers while only the broken one runs, altered in Postgres before
    // any worker takes them: one's stored network does not parse, the other's learning rate diverges.
    const bad = await stack.submit({ ...SWEEP, name: 'e2e-bad-network' });
    await stack.db.prisma.run.updateMany({ where: { sweepId: bad.id }, data: { unet: { base: 'wide' } } });
    const diverges = await stack.submit({ ...SWEEP, name: 'e2e-diverges' });
    const hot = await stack.db.prisma.run.findFirstOrThrow({ where: { sweepId: diverges.id } });
    await stack.db.prisma.run.update({ where: { id: hot.id }, data: { hyper: { ...(hot.hyper as Record<string, unknown>), learningRate: 1e30, warmupSteps: 0 } } });

    stack.addWorker();
    expect((await stack.waitForSweep(body.id, 240_000)).status).toBe('SUCCEEDED');

    // Every result is worker 2's, and worker 1's attempt was not counted, in Postgres nor in BullMQ.
    const run = await stack.db.prisma.run.findFirstOrThrow({ where: { sweepId: body.id } });
    expect(run).toMatchObject({ status: 'SUCCEEDED', attempts: 1, workerId: 'e2e-worker-2', error: null });
    const results = await stack.db.prisma.probeResult.findMany({ where: { sweepId: body.id }, select: { workerId: true } });
    expect(results.length).toBeGreaterThan(0);
    expect(new Set(results.map((r) => r.workerId))).toEqual(new Set(['e2e-worker-2']));
    const events = await stack.db.prisma.sweepEvent.findMany({ where: { sweepId: body.id }, orderBy: { id: 'asc' } });
    const runEvents = events.filter((e) => e.type.startsWith('run.') && e.type !== 'run.checkpoint').map((e): Record<string, unknown> => ({ type: e.type, ...(e.data as Record<string, unknown>) }));
    expect(runEvents.map((e) => [e.type, e['workerId'] ?? null, e['attempt'] ?? null])).toEqual([
      ['run.started', 'e2e-worker-1', 1],
      ['run.requeued', null, null],
      ['run.started', 'e2e-worker-2', 1],
      ['run.succeeded', null, null],
    ]);
    expect(runEvents[1]['error']).toMatch(/^worker e2e-worker-1 handed it back: ARTIFACT_DIR .* cannot be written \(ENOTDIR/);
    const queue = new Queue(QUEUES.compute, { connection: redisConnection(REDIS_URL, 'producer'), prefix: stack.prefix });
    try {
      const job = await queue.getJob(`pretrain-${run.id}`);
      expect(await job?.getState()).toBe('completed');
      expect(job?.attemptsMade).toBe(1);
    } finally {
      await queue.close();
    }

    // The bad network failed at once, with its reason on the run and in the sweep's events.
    const failed = await stack.waitForSweep(bad.id, 60_000);
    expect(failed.status).toBe('FAILED');
    const badRun = await stack.db.prisma.run.findFirstOrThrow({ where: { sweepId: bad.id } });
    expect(badRun).toMatchObject({ status: 'FAILED', attempts: 1 });
    expect(badRun.error).toMatch(/^run .* cannot be built: ZodError: .*base/);
    const badEvents = await stack.db.prisma.sweepEvent.findMany({ where: { sweepId: bad.id, type: 'run.failed' } });
    expect(badEvents.map((e) => (e.data as Record<string, unknown>)['error'])).toEqual([badRun.error]);

    // A NaN or infinite training loss fails at once too, saying so.
    expect((await stack.waitForSweep(diverges.id, 120_000)).status).toBe('FAILED');
    const diverged = await stack.db.prisma.run.findFirstOrThrow({ where: { sweepId: diverges.id } });
    expect(diverged).toMatchObject({ status: 'FAILED', attempts: 1, workerId: 'e2e-worker-2' });
    expect(diverged.error).toMatch(/^NonFiniteLossError: loss is (NaN|-?Infinity) at step \d+/);
    expect((await stack.db.prisma.sweepEvent.findMany({ where: { sweepId: diverges.id, type: 'run.failed' } })).map((e) => (e.data as Record<string, unknown>)['error'])).toEqual([diverged.error]);

    // Worker 1 is still up, unhealthy, taking nothing; the API and the CLI say why.
    expect(stack.workers[0].child.exitCode).toBeNull();
    expect(await worker('e2e-worker-1')).toMatchObject({ state: 'unhealthy', currentJobId: null, unhealthyReason: unhealthy.unhealthyReason });
    expect(await worker('e2e-worker-2')).toMatchObject({ state: 'idle', unhealthyReason: null });
    const health = await fetch(`http://127.0.0.1:${healthPort}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ id: 'e2e-worker-1', state: 'unhealthy', unhealthyReason: unhealthy.unhealthyReason });
    const cli = spawnSync(process.execPath, ['-r', '@swc-node/register', 'apps/cli/src/main.ts', 'workers', '--api', stack.base], { encoding: 'utf8' });
    expect(cli.status).toBe(0);
    expect(cli.stdout).toMatch(/e2e-worker-1 .* unhealthy/);
    expect(cli.stdout).toContain(`e2e-worker-1 is unhealthy: ARTIFACT_DIR ${brokenArtifacts} cannot be written (ENOTDIR`);
  });
});
