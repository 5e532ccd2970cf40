import { deleteQueueKeys, startPostgresServer, startRedisServer, waitFor, type PostgresServer, type RedisServer } from '@ddae/testing';
import { childPids, isAlive, REDIS_URL, startStack, type Stack } from './stack';

/**
 * Long enough to be killed mid-run: 40 steps, a checkpoint every 8, a loss point every step (where an
 * attempt resumed is read from them). The probe only has to happen once per run (no accuracy is
 * checked here): the smallest one the other e2e files use.
 */
const SWEEP = {
  name: 'e2e-faults',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 40, batchSize: 8, learningRate: 0.001, checkpointEvery: 8, trainSize: 256, seeds: [0], lossEvery: 1, samples: false },
  probe: { layers: ['out_4'], timesteps: [10], epochs: 2, batchSize: 64, learningRate: 0.01, trainSize: 128, testSize: 64 },
  baselines: [],
};

/** Waits until the run has a recorded checkpoint and is still training; returns its row. */
async function midTraining(stack: Stack) {
  return waitFor('a checkpoint mid-training', async () => {
    const run = await stack.db.prisma.run.findFirst({ where: { status: 'RUNNING' }, include: { checkpoints: true } });
    return run && run.checkpoints.length > 0 && run.stepsDone < 32 ? run : undefined;
  }, { timeoutMs: 120_000, intervalMs: 100, describe: async () => stack.logs() });
}

/** Every interval checkpoint once (plus any written on a graceful stop), one result row, one run. */
async function expectExactlyOnce(stack: Stack, extraCheckpoints: number[] = []) {
  const checkpoints = await stack.db.prisma.checkpoint.findMany({ orderBy: { step: 'asc' } });
  expect(checkpoints.map((c) => c.step)).toEqual([...new Set([8, 16, 24, 32, 40, ...extraCheckpoints])].sort((a, b) => a - b));
  expect(await stack.db.prisma.probeResult.count()).toBe(1);
  const run = await stack.db.prisma.run.findFirstOrThrow();
  expect(run).toMatchObject({ status: 'SUCCEEDED', stepsDone: 40 });
  return run;
}

/**
 * Where the run's last attempt started training, read from state, not from logs: that attempt
 * began at its `run.started` event; every step it trained wrote its loss point (upserted on
 * (run, step), `updated_at` the time of the newest write), so the first point written after that
 * event is the first step it trained. Also the newest checkpoint recorded before the attempt: a
 * resume starts there.
 */
async function lastAttempt(stack: Stack): Promise<{ resumedFrom: number; newestCheckpoint: number; attempt: unknown }> {
  const started = await stack.db.prisma.sweepEvent.findFirstOrThrow({ where: { type: 'run.started' }, orderBy: { id: 'desc' } });
  const firstTrained = await stack.db.prisma.trainLoss.findFirstOrThrow({ where: { updatedAt: { gte: started.createdAt } }, orderBy: { step: 'asc' } });
  // Every step before it has its point, from the earlier attempt: none lost.
  expect(await stack.db.prisma.trainLoss.count({ where: { step: { lt: firstTrained.step } } })).toBe(firstTrained.step - 1);
  const newest = await stack.db.prisma.checkpoint.findFirst({ where: { createdAt: { lt: started.createdAt } }, orderBy: { step: 'desc' } });
  return { resumedFrom: firstTrained.step - 1, newestCheckpoint: newest?.step ?? 0, attempt: (started.data as { attempt?: unknown }).attempt };
}

describe('faults, injected for real: nothing lost, nothing counted twice', () => {
  let stack: Stack | undefined;
  /** A redis-server of the test's own: restarting the machine's shared one would disturb others. */
  let redis: RedisServer | undefined;
  /** Likewise a PostgreSQL of the test's own (initdb in a temporary folder, its own port). */
  let postgres: PostgresServer | undefined;

  afterEach(async () => {
    await stack?.stop();
    await redis?.dispose();
    await postgres?.dispose();
    stack = undefined;
    redis = undefined;
    postgres = undefined;
  });

  it('kill -9 of the compute child: the attempt fails, is retried with backoff and resumes', async () => {
    stack = await startStack({ workers: 1 });
    const body = await stack.submit(SWEEP);
    const before = await midTraining(stack);
    const [child] = childPids(stack.workers[0].child.pid as number);
    expect(child).toBeDefined();
    process.kill(child, 'SIGKILL');

    expect((await stack.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');
    const run = await expectExactlyOnce(stack);
    expect(run.attempts).toBe(2);
    // The retry resumed from the newest checkpoint the killed attempt had recorded.
    const resumed = await lastAttempt(stack);
    expect(resumed).toMatchObject({ attempt: 2, resumedFrom: resumed.newestCheckpoint });
    expect(resumed.resumedFrom).toBeGreaterThanOrEqual(before.checkpoints[0].step);
  });

  it('kill -9 of a whole worker: its lock expires and another worker resumes the run', async () => {
    const s = (stack = await startStack({ workers: 2, workerEnv: { LOCK_DURATION_MS: '3000', STALLED_INTERVAL_MS: '1500' } }));
    const body = await s.submit(SWEEP);
    const before = await midTraining(s);
    // Worker ids are e2e-worker-<1-based index>.
    const victimIndex = Number(before.workerId?.replace('e2e-worker-', '')) - 1;
    const victim = s.workers[victimIndex];
    const orphans = childPids(victim.child.pid as number);
    expect(orphans).toHaveLength(1);
    victim.child.kill('SIGKILL');

    expect((await s.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');
    const run = await expectExactlyOnce(s);
    expect(run.workerId).toBe(`e2e-worker-${2 - victimIndex}`);
    const resumed = await lastAttempt(s);
    expect(resumed).toMatchObject({ attempt: 2, resumedFrom: resumed.newestCheckpoint });
    expect([8, 16, 24, 32]).toContain(resumed.resumedFrom);
    // The dead worker's compute child noticed its parent was gone and exited.
    for (const pid of orphans) expect(isAlive(pid)).toBe(false);
  });

  it('SIGTERM to a busy worker: it checkpoints, hands its job back and exits; another worker resumes', async () => {
    const s = (stack = await startStack({ workers: 2, workerEnv: { SHUTDOWN_GRACE_MS: '20000' } }));
    const body = await s.submit(SWEEP);
    const before = await midTraining(s);
    const victimIndex = Number(before.workerId?.replace('e2e-worker-', '')) - 1;
    const victim = s.workers[victimIndex];
    const stoppedAt = Date.now();
    const code = await victim.stop(60_000);
    expect(code).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(25_000);
    expect(victim.output()).toMatch(/received SIGTERM/);

    // The child checkpointed the step it stopped at (unless it had just written that one), and
    // the other worker resumed from exactly there: no step was lost.
    const stopStep = Math.max(...(await s.db.prisma.checkpoint.findMany()).map((c) => c.step));
    expect(stopStep).toBeGreaterThanOrEqual(before.stepsDone);
    expect((await s.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');
    const run = await expectExactlyOnce(s, [stopStep]);
    expect(run.workerId).toBe(`e2e-worker-${2 - victimIndex}`);
    expect(await lastAttempt(s)).toEqual({ attempt: 2, resumedFrom: stopStep, newestCheckpoint: stopStep });
    const gone = await s.db.prisma.worker.findUniqueOrThrow({ where: { id: `e2e-worker-${victimIndex + 1}` } });
    expect(gone.state).toBe('stopped');
  });

  it('SIGTERM to a busy worker while Redis is unreachable: it still checkpoints, releases its job and exits within the grace period', async () => {
    const own = (redis = await startRedisServer());
    const s = (stack = await startStack({ workers: 2, redisUrl: own.url, workerEnv: { SHUTDOWN_GRACE_MS: '8000' } }));
    const body = await s.submit(SWEEP);
    const before = await midTraining(s);
    const victimIndex = Number(before.workerId?.replace('e2e-worker-', '')) - 1;
    const victim = s.workers[victimIndex];
    await own.stop('SIGKILL');
    await waitFor('the victim to notice Redis is gone', async () => (/ECONNREFUSED|Connection is closed/.test(victim.output()) ? true : undefined), { timeoutMs: 15_000, intervalMs: 100, describe: async () => s.logs() });

    const stoppedAt = Date.now();
    expect(await victim.stop(60_000)).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(8_000 + 2_000);
    // Postgres holds what Redis could not be told: the stop step's checkpoint, the run handed back.
    const stopStep = Math.max(...(await s.db.prisma.checkpoint.findMany()).map((c) => c.step));
    expect(stopStep).toBeGreaterThanOrEqual(before.stepsDone);
    expect(await s.db.prisma.run.findUniqueOrThrow({ where: { id: before.id } })).toMatchObject({ status: 'QUEUED', error: 'released by a stopping worker' });
    expect((await s.db.prisma.worker.findUniqueOrThrow({ where: { id: `e2e-worker-${victimIndex + 1}` } })).state).toBe('stopped');

    // Redis comes back (empty): the reconciler offers the run again and the other worker resumes it.
    await own.start();
    expect((await s.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');
    const run = await expectExactlyOnce(s, [stopStep]);
    expect(run.workerId).toBe(`e2e-worker-${2 - victimIndex}`);
    expect(await lastAttempt(s)).toEqual({ attempt: 2, resumedFrom: stopStep, newestCheckpoint: stopStep });
  });

  it('Redis restarts mid-sweep (a real redis-server, down, back empty on the same port): the sweep completes, finished cells are not run again', async () => {
    const own = (redis = await startRedisServer());
    const s = (stack = await startStack({ workers: 1, redisUrl: own.url }));
    const body = await s.submit({ ...SWEEP, baselines: ['pixels'] });
    await midTraining(s);
    expect((await s.db.prisma.baseline.findFirstOrThrow()).status).toBe('SUCCEEDED');
    await own.stop('SIGTERM');
    await waitFor('the worker to notice Redis is gone', async () => (/ECONNREFUSED|Connection is closed/.test(s.workers[0].output()) ? true : undefined), { timeoutMs: 15_000, intervalMs: 100, describe: async () => s.logs() });
    await own.start();

    expect((await s.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');
    // The running job went on in its child through the outage; nothing finished ran again.
    const run = await expectExactlyOnce(s);
    expect(run.attempts).toBe(1);
    expect(await s.db.prisma.baseline.findFirstOrThrow()).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    expect(await s.db.prisma.probeTask.findFirstOrThrow()).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
  });

  it('Redis comes back empty mid-sweep: the sweep completes and finished cells are not run again', async () => {
    const s = (stack = await startStack({ workers: 1 }));
    const body = await s.submit({ ...SWEEP, baselines: ['pixels'] });
    await midTraining(s);
    expect((await s.db.prisma.baseline.findFirstOrThrow()).status).toBe('SUCCEEDED');
    // Every key of this deployment is gone, the running job's included.
    expect(await deleteQueueKeys(REDIS_URL, s.prefix)).toBeGreaterThan(0);

    expect((await s.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');
    const run = await expectExactlyOnce(s);
    expect(run.attempts).toBe(1);
    const baseline = await s.db.prisma.baseline.findFirstOrThrow();
    expect(baseline).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
  });

  it('Postgres restarts mid-sweep (a server of its own, fast shutdown, back on the same port): workers retry their writes and nothing is lost', async () => {
    const own = (postgres = await startPostgresServer());
    const s = (stack = await startStack({ workers: 1, databaseServerUrl: own.url }));
    const body = await s.submit(SWEEP);
    await midTraining(s);
    await own.stop('SIGINT');
    // The API says so while it is down: 503 naming Postgres.
    const health = await fetch(`${s.base}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'degraded', postgres: 'down', redis: 'up' });
    await own.start();
    await waitFor('/health to answer 200 again', async () => ((await fetch(`${s.base}/health`)).ok ? true : undefined), { timeoutMs: 15_000, intervalMs: 200, describe: async () => s.logs() });

    expect((await s.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');
    // The outage did not even cost an attempt: writes waited for Postgres to come back.
    expect((await expectExactlyOnce(s)).attempts).toBe(1);
    expect(s.workers[0].output()).not.toMatch(/exited unexpectedly/);
  });

  it('the API restarts mid-sweep: state is intact and the sweep completes', async () => {
    const s = (stack = await startStack({ workers: 1 }));
    const body = await s.submit(SWEEP, 'api-restart');
    await midTraining(s);
    await s.restartApi();
    const view = await s.client.getSweep(body.id);
    expect(view).toMatchObject({ id: body.id, status: 'RUNNING' });
    // A client that retries its POST across the restart gets the same sweep.
    const again = await s.submit(SWEEP, 'api-restart');
    expect(again).toMatchObject({ id: body.id, created: false });

    expect((await s.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');
    expect((await expectExactlyOnce(s)).attempts).toBe(1);
  });
});
