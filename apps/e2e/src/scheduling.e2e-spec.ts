import { Queue } from 'bullmq';
import { jobIds, QUEUES } from '@ddae/contracts';
import { redisConnection } from '@ddae/queue';
import { waitFor } from '@ddae/testing';
import { childPids, REDIS_URL, startStack, type Stack } from './stack';

describe('scheduling: a sweep\'s concurrency cap holds across worker processes', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ workers: 2 });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('runs at most maxConcurrency tasks of a sweep at once, and still finishes it; a throttled job spends no attempt', async () => {
    // Both workers waiting on the queue: the second to take a job of the sweep finds it at its cap.
    await waitFor('both workers to register', async () => ((await stack.client.workers()).workers.length === 2 ? true : undefined), { timeoutMs: 60_000, describe: async () => stack.logs() });
    const body = await stack.submit({
      name: 'e2e-capped',
      dataset: 'fashion-mnist',
      maxConcurrency: 1,
      models: [{ method: 'ddpm', unet: 'tiny' }],
      pretrain: { steps: 8, batchSize: 8, checkpointEvery: 8, trainSize: 128, seeds: [0, 1], samples: false },
      probe: { layers: ['out_4'], timesteps: [10], epochs: 2, batchSize: 64, learningRate: 0.01, trainSize: 128, testSize: 64 },
      baselines: [],
    });
    expect(body).toMatchObject({ created: true, queued: true });
    expect((await stack.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');

    // Replay the sweep's story: between a task's start and its end no other task started.
    const events = [...(await (await stack.client.stream(`/api/sweeps/${body.id}/events`)).text()).matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    let running = 0;
    let most = 0;
    for (const e of events) {
      if (e === 'run.started' || e === 'probe.started') running += 1;
      if (e === 'run.succeeded' || e === 'probe.succeeded' || e === 'run.requeued' || e === 'probe.requeued') running -= 1;
      most = Math.max(most, running);
    }
    expect(events.filter((e) => e === 'run.started')).toHaveLength(2);
    expect(most).toBe(1);
    // Both workers were there, one of them kept waiting for its turn.
    expect(stack.workers.every((w) => /backend wasm/.test(w.output()))).toBe(true);

    // Throttled jobs went back to the queue without spending an attempt: in Postgres every task
    // was claimed once, and in BullMQ every job completed on its first attempt, though some were
    // started more than once (each throttle is a start, put back for 5 s).
    const runs = await stack.db.prisma.run.findMany({ where: { sweepId: body.id } });
    const probes = await stack.db.prisma.probeTask.findMany({ where: { sweepId: body.id } });
    expect([...runs, ...probes].map((t) => [t.status, t.attempts])).toEqual(Array(4).fill(['SUCCEEDED', 1]));
    const queue = new Queue(QUEUES.compute, { connection: redisConnection(REDIS_URL, 'producer'), prefix: stack.prefix });
    try {
      const jobs = await Promise.all([...runs.map((r) => jobIds.pretrain(r.id)), ...probes.map((p) => jobIds.probe(p.id))].map(async (id) => {
        const job = await queue.getJob(id);
        return { id, state: await job?.getState(), attemptsMade: job?.attemptsMade, attemptsStarted: job?.attemptsStarted ?? 0 };
      }));
      for (const job of jobs) expect(job).toMatchObject({ state: 'completed', attemptsMade: 1 });
      const throttled = jobs.filter((j) => j.attemptsStarted > 1);
      expect(throttled.length).toBeGreaterThan(0);
      process.stdout.write(`scheduling.e2e: started / made per job: ${jobs.map((j) => `${j.id.split('-')[0]} ${j.attemptsStarted}/${j.attemptsMade}`).join(', ')}\n`);
    } finally {
      await queue.close();
    }
  });

  it('cancel: the running job notices within a heartbeat, its child stops and frees the device', async () => {
    const body = await stack.submit({
      name: 'e2e-cancel',
      dataset: 'fashion-mnist',
      models: [{ method: 'ddpm', unet: 'tiny' }],
      pretrain: { steps: 400, batchSize: 8, checkpointEvery: 50, trainSize: 128, seeds: [0], samples: false },
      probe: { layers: ['out_4'], timesteps: [10] },
      baselines: [],
    });
    const running = await waitFor('the run to be training', async () => {
      const run = await stack.db.prisma.run.findFirst({ where: { sweepId: body.id, status: 'RUNNING' } });
      return run && run.stepsDone > 0 ? run : undefined;
    }, { timeoutMs: 120_000, intervalMs: 200, describe: async () => stack.logs() });
    const worker = stack.workers[Number(running.workerId?.replace('e2e-worker-', '')) - 1];
    expect(childPids(worker.child.pid as number)).toHaveLength(1);

    expect((await stack.client.cancel(body.id)).status).toBe('CANCELLED');
    // Heartbeats every second poll the row; the child checkpoints and exits at its next step.
    await waitFor('the compute child to exit', async () => (childPids(worker.child.pid as number).length === 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200, describe: async () => stack.logs() });
    const run = await stack.db.prisma.run.findUniqueOrThrow({ where: { id: running.id } });
    expect(run.status).toBe('CANCELLED');
    expect(run.stepsDone).toBeLessThan(400);
    expect(await stack.db.prisma.probeResult.count({ where: { sweepId: body.id } })).toBe(0);
  });

  it('fairness: a small sweep submitted after a big one starts within about one job\'s duration, not after the big one', async () => {
    const tiny = (name: string, seeds: number[]) => ({
      name,
      dataset: 'fashion-mnist',
      models: [{ method: 'ddpm', unet: 'tiny' }],
      pretrain: { steps: 16, batchSize: 8, checkpointEvery: 16, trainSize: 128, seeds, samples: false },
      probe: { layers: ['out_4'], timesteps: [10], epochs: 2, batchSize: 64, learningRate: 0.01, trainSize: 128, testSize: 64 },
      baselines: [],
    });
    const big = await stack.submit(tiny('e2e-big', [0, 1, 2, 3, 4, 5]));
    // Both workers busy with the big sweep's first runs; four more of its runs wait in the queue.
    await waitFor('both workers on the big sweep', async () => ((await stack.db.prisma.run.count({ where: { sweepId: big.id, status: 'RUNNING' } })) === 2 ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 100,
      describe: async () => stack.logs(),
    });
    const submittedAt = new Date();
    const small = await stack.submit(tiny('e2e-small', [0]));
    expect((await stack.waitForSweep(small.id, 300_000)).status).toBe('SUCCEEDED');
    await stack.client.cancel(big.id);

    const smallRun = await stack.db.prisma.run.findFirstOrThrow({ where: { sweepId: small.id } });
    const bigRuns = await stack.db.prisma.run.findMany({ where: { sweepId: big.id } });
    // Only the two runs already running when it arrived started before it (FIFO: all six would).
    const startedBefore = bigRuns.filter((r) => r.startedAt && r.startedAt < (smallRun.startedAt as Date));
    expect(startedBefore).toHaveLength(2);
    // It waited about one job: what was left of a big run, then that run's probe (cheap work goes
    // first by design), plus a little slack for the claim.
    const took = (t: { status: string; startedAt: Date | null; finishedAt: Date | null }) => (t.status === 'SUCCEEDED' && t.startedAt && t.finishedAt ? t.finishedAt.getTime() - t.startedAt.getTime() : 0);
    const longestRun = Math.max(...bigRuns.map(took));
    const longestProbe = Math.max(0, ...(await stack.db.prisma.probeTask.findMany({ where: { sweepId: big.id } })).map(took));
    expect(longestRun).toBeGreaterThan(0);
    const waitedMs = (smallRun.startedAt as Date).getTime() - submittedAt.getTime();
    expect(waitedMs).toBeLessThan(longestRun + longestProbe + 5_000);
  });
});
