import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { Queue } from 'bullmq';
import { QUEUES, type WorkerView } from '@ddae/contracts';
import { encodeIdx, IDX_FILES } from '@ddae/datasets';
import { redisConnection } from '@ddae/queue';
import { waitFor } from '@ddae/testing';
import { REDIS_URL, startStack, type Stack } from './stack';

/** Two seeds: two pretraining jobs at once, so worker 1 takes one while worker 2 runs the other. */
const SWEEP = {
  name: 'e2e-missing-dataset',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 20, batchSize: 8, checkpointEvery: 10, trainSize: 64, seeds: [0, 1], samples: false },
  probe: { layers: ['out_4'], timesteps: [10], epochs: 2, batchSize: 64, learningRate: 0.01, trainSize: 128, testSize: 64 },
  baselines: [],
};

/** A tiny MNIST (two 28x28 images per split): all worker 1 can read. */
function writeTinyMnist(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const f of Object.values(IDX_FILES)) {
    writeFileSync(path.join(dir, f.images), gzipSync(encodeIdx([2, 28, 28], new Uint8Array(2 * 28 * 28))));
    writeFileSync(path.join(dir, f.labels), gzipSync(encodeIdx([2], Uint8Array.from([3, 7]))));
  }
}

/**
 * A worker that lacks a data set another live worker has does not fail its jobs
 * (apps/worker/src/core/missing-dataset.ts): worker 1 reads only MNIST (its DDAE_DATA_DIR), worker 2
 * Fashion-MNIST (the Debian path). A Fashion-MNIST sweep succeeds, every job computed by worker 2;
 * worker 1 hands back what it takes before claiming it (nothing in Postgres, no event in the sweep's
 * stream, no attempt spent) and stays healthy. (A single worker lacking the data set fails the job
 * at once: retries.e2e-spec.ts.)
 */
describe('a worker that lacks a data set, end to end with two real workers', () => {
  let stack: Stack;
  let dataRoot: string;

  beforeAll(async () => {
    dataRoot = mkdtempSync(path.join(tmpdir(), 'ddae-mnist-only-'));
    writeTinyMnist(path.join(dataRoot, 'mnist'));
    stack = await startStack({ workers: 2, workerEnvs: [{ DDAE_DATA_DIR: dataRoot }, {}] });
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(dataRoot, { recursive: true, force: true });
  });

  const worker = async (id: string): Promise<WorkerView | undefined> => (await stack.client.workers()).workers.find((w) => w.id === id);

  it('hands the jobs it cannot run to the worker that can, unspent and unrecorded, and stays healthy; the sweep succeeds', async () => {
    for (const id of ['e2e-worker-1', 'e2e-worker-2']) {
      await waitFor(`${id} to be idle`, async () => (await worker(id))?.state === 'idle' || undefined, { timeoutMs: 120_000, describe: async () => stack.logs() });
    }
    // Each reports what it can read.
    expect(await worker('e2e-worker-1')).toMatchObject({ datasets: ['mnist'], unhealthyReason: null });
    expect(await worker('e2e-worker-2')).toMatchObject({ datasets: ['fashion-mnist'], unhealthyReason: null });

    const body = await stack.submit(SWEEP);
    expect((await stack.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');

    // Every result is worker 2's, on its first attempt.
    const runs = await stack.db.prisma.run.findMany({ where: { sweepId: body.id } });
    expect(runs).toHaveLength(2);
    for (const run of runs) expect(run).toMatchObject({ status: 'SUCCEEDED', attempts: 1, workerId: 'e2e-worker-2', error: null });
    const results = await stack.db.prisma.probeResult.findMany({ where: { sweepId: body.id }, select: { workerId: true } });
    expect(results.length).toBeGreaterThan(0);
    expect(new Set(results.map((r) => r.workerId))).toEqual(new Set(['e2e-worker-2']));

    // Nothing of worker 1 reached Postgres or the sweep's event stream: it looked at the data set
    // before claiming anything, so no run.started / probe.started / *.requeued event, no attempt.
    const events = (await stack.db.prisma.sweepEvent.findMany({ where: { sweepId: body.id }, orderBy: { id: 'asc' } })).map((e): Record<string, unknown> & { type: string } => ({ type: e.type, ...(e.data as Record<string, unknown>) }));
    expect(events.filter((e) => e.type.endsWith('.requeued') || e.type.endsWith('.failed'))).toEqual([]);
    const started = events.filter((e) => e.type.endsWith('.started') && e['workerId'] !== undefined);
    // One started event per run and per probe task, each worker 2's first attempt.
    expect(started.length).toBe(runs.length + (await stack.db.prisma.probeTask.count({ where: { sweepId: body.id } })));
    expect(started.filter((e) => e['workerId'] !== 'e2e-worker-2')).toEqual([]);
    expect(started.every((e) => e['attempt'] === 1)).toBe(true);
    // BullMQ agrees: one attempt each. Worker 1 took at least one job (worker 2 runs one at a time,
    // worker 1 sat idle) and handed it back: the job's own log says so, and why.
    const queue = new Queue(QUEUES.compute, { connection: redisConnection(REDIS_URL, 'producer'), prefix: stack.prefix });
    const handBacks: string[] = [];
    try {
      for (const run of runs) {
        const job = await queue.getJob(`pretrain-${run.id}`);
        expect(await job?.getState()).toBe('completed');
        expect(job?.attemptsMade).toBe(1);
        handBacks.push(...(await queue.getJobLogs(`pretrain-${run.id}`)).logs);
      }
    } finally {
      await queue.close();
    }
    expect(handBacks.length).toBeGreaterThan(0);
    for (const line of handBacks) {
      expect(line).toMatch(new RegExp(`^handed back while (a worker that has its data set sat idle|every worker that has its data set was busy), by e2e-worker-1: it cannot read data set fashion-mnist \\(DDAE_DATA_DIR=${dataRoot}\\); left for e2e-worker-2 \\((idle|busy)\\), which can$`));
    }

    // Worker 1 is up, healthy and idle; the API and the CLI show what each can read.
    expect(stack.workers[0].child.exitCode).toBeNull();
    expect(await worker('e2e-worker-1')).toMatchObject({ state: 'idle', unhealthyReason: null, datasets: ['mnist'], currentJobId: null });
    expect(await worker('e2e-worker-2')).toMatchObject({ state: 'idle', unhealthyReason: null, datasets: ['fashion-mnist'] });
    const cli = spawnSync(process.execPath, ['-r', '@swc-node/register', 'apps/cli/src/main.ts', 'workers', '--api', stack.base], { encoding: 'utf8' });
    expect(cli.status).toBe(0);
    expect(cli.stdout).toMatch(/data sets/);
    expect(cli.stdout).toMatch(/e2e-worker-1 .* mnist +idle/);
    expect(cli.stdout).toMatch(/e2e-worker-2 .* fashion-mnist +idle/);
  });
});
