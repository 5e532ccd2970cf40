import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { QUEUES, JOB_NAMES } from '@ddae/contracts';
import { COMPUTE_JOB_DEFAULTS, redisConnection } from '@ddae/queue';
import { waitFor } from '@ddae/testing';
import { childPids, REDIS_URL, startStack, type Stack } from './stack';

/**
 * The worker's retry policy with a real worker (apps/worker/src/jobs/compute-jobs.service.ts,
 * libs/queue's COMPUTE_JOB_DEFAULTS): deterministic errors fail at once with their reason; any
 * other failure is retried with exponential backoff (2 s, 4 s, 8 s) up to 4 attempts, then the run,
 * its probes and the sweep end FAILED. Timings are read from the events' timestamps.
 */
const SWEEP = {
  name: 'e2e-retries',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 400, batchSize: 8, checkpointEvery: 100, trainSize: 128, seeds: [0], samples: false },
  probe: { layers: ['out_4'], timesteps: [10], epochs: 2, batchSize: 64, learningRate: 0.01, trainSize: 128, testSize: 64 },
  baselines: [],
};

interface Event {
  type: string;
  data: Record<string, unknown>;
  createdAt: Date;
}

describe('retries, end to end with a real worker', () => {
  let stack: Stack;
  /**
   * The worker's DDAE_DATA_DIR: at first it holds another data set's folder (the worker's start-up
   * check passes) but not Fashion-MNIST, then it is linked to the real one.
   */
  let dataRoot: string;

  beforeAll(async () => {
    dataRoot = mkdtempSync(path.join(tmpdir(), 'ddae-data-'));
    mkdirSync(path.join(dataRoot, 'mnist'));
    stack = await startStack({ workers: 1, workerEnv: { DDAE_DATA_DIR: dataRoot } });
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(dataRoot, { recursive: true, force: true });
  });

  const events = async (sweepId: string): Promise<Event[]> =>
    (await stack.db.prisma.sweepEvent.findMany({ where: { sweepId }, orderBy: { id: 'asc' } })).map((e) => ({ type: e.type, data: e.data as Record<string, unknown>, createdAt: e.createdAt }));

  it('deterministic failures fail at once with their reason: a data set no live worker has, an invalid payload', async () => {
    const body = await stack.submit({ ...SWEEP, name: 'e2e-missing-data' });
    expect(body.created).toBe(true);
    expect((await stack.waitForSweep(body.id, 120_000)).status).toBe('FAILED');
    const run = await stack.db.prisma.run.findFirstOrThrow({ where: { sweepId: body.id } });
    expect(run).toMatchObject({ status: 'FAILED', attempts: 1 });
    // No other live worker reports the data set: nobody could run it, so it fails at once, saying so.
    expect(run.error).toMatch(/^DatasetMissingError: no live worker can read data set fashion-mnist: worker e2e-worker-1 \(DDAE_DATA_DIR=.*\) cannot /);
    expect(run.error).toContain('Or start a worker that has it.');
    expect(run.error).toContain(path.join(dataRoot, 'fashion-mnist'));
    expect(run.error).toContain('apt-get install -y dataset-fashion-mnist');
    expect(await stack.db.prisma.probeTask.findMany({ where: { sweepId: body.id }, select: { status: true } })).toEqual([{ status: 'FAILED' }]);
    const story = (await events(body.id)).map((e) => e.type);
    expect(story.filter((t) => t.startsWith('run.'))).toEqual(['run.started', 'run.failed']);
    expect(story.at(-1)).toBe('sweep.status');

    const queue = new Queue(QUEUES.compute, { connection: redisConnection(REDIS_URL, 'producer'), prefix: stack.prefix });
    try {
      // BullMQ agrees: one attempt, failed, not waiting for another.
      const job = await queue.getJob(`pretrain-${run.id}`);
      expect(await job?.getState()).toBe('failed');
      expect(job?.attemptsMade).toBe(1);
      expect(job?.failedReason).toMatch(/DatasetMissingError/);

      // A payload that does not parse can never succeed: failed on its first attempt, saying why.
      const bad = await queue.add(JOB_NAMES.pretrain, { v: 1, runId: 42 }, { ...COMPUTE_JOB_DEFAULTS, jobId: 'e2e-invalid-payload' });
      const failed = await waitFor('the invalid job to fail', async () => {
        const j = await queue.getJob(bad.id as string);
        return (await j?.getState()) === 'failed' ? j : undefined;
      }, { timeoutMs: 60_000, intervalMs: 200, describe: async () => stack.logs() });
      expect(failed?.attemptsMade).toBe(1);
      expect(failed?.failedReason).toMatch(/invalid pretrain payload/);
      expect(failed?.failedReason).toMatch(/runId/);
    } finally {
      await queue.close();
    }
  });

  it('a transient failure is retried after 2 s, 4 s, 8 s; failing every attempt ends the run, its probes and the sweep FAILED', async () => {
    // The data set is there now: each attempt gets as far as training, and its child is killed.
    symlinkSync('/usr/share/datasets/fashion-mnist', path.join(dataRoot, 'fashion-mnist'));
    const body = await stack.submit(SWEEP);
    const attempts = COMPUTE_JOB_DEFAULTS.attempts as number;
    expect(attempts).toBe(4);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const child = await waitFor(`attempt ${attempt}'s compute child`, async () => {
        const run = await stack.db.prisma.run.findFirst({ where: { sweepId: body.id, status: 'RUNNING', attempts: attempt } });
        const [pid] = run ? childPids(stack.workers[0].child.pid as number) : [];
        return pid;
      }, { timeoutMs: 60_000, intervalMs: 100, describe: async () => stack.logs() });
      process.kill(child, 'SIGKILL');
    }
    expect((await stack.waitForSweep(body.id, 120_000)).status).toBe('FAILED');

    const run = await stack.db.prisma.run.findFirstOrThrow({ where: { sweepId: body.id } });
    expect(run).toMatchObject({ status: 'FAILED', attempts });
    expect(run.error).toMatch(/^ComputeProcessExit: compute child exited unexpectedly \(code null, signal SIGKILL\)/);
    expect(await stack.db.prisma.probeTask.findMany({ where: { sweepId: body.id }, select: { status: true, error: true } })).toEqual([{ status: 'FAILED', error: 'pretraining run failed' }]);

    const story = await events(body.id);
    const runEvents = story.filter((e) => e.type.startsWith('run.') && e.type !== 'run.checkpoint');
    expect(runEvents.map((e) => [e.type, e.data['attempt'] ?? null])).toEqual([
      ['run.started', 1], ['run.requeued', null],
      ['run.started', 2], ['run.requeued', null],
      ['run.started', 3], ['run.requeued', null],
      ['run.started', 4], ['run.failed', null],
    ]);
    // Exponential backoff: the k-th retry starts at least 2 s * 2^(k-1) after the failure before it.
    const waits = [1, 3, 5].map((i) => runEvents[i + 1].createdAt.getTime() - runEvents[i].createdAt.getTime());
    const delay = (COMPUTE_JOB_DEFAULTS.backoff as { delay: number }).delay;
    waits.forEach((ms, k) => expect(ms).toBeGreaterThanOrEqual(delay * 2 ** k));
    expect(story.at(-1)).toMatchObject({ type: 'sweep.status', data: expect.objectContaining({ status: 'FAILED' }) });
    const sweep = await stack.client.getSweep(body.id);
    expect(sweep.status).toBe('FAILED');
  });
});
