import { Queue, Worker } from 'bullmq';
import { redisConnection } from '@ddae/queue';
import { deleteQueueKeys, uniqueQueuePrefix } from '@ddae/testing';
import { ParkedJobs } from './parked-jobs';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('jobs parked for a worker that has their data set (a real Redis)', () => {
  const prefix = uniqueQueuePrefix('parked');
  let queue: Queue;
  let worker: Worker;
  afterAll(async () => {
    await worker?.close();
    await queue?.close();
    await deleteQueueKeys(REDIS_URL, prefix);
  });

  it('wakes the delayed jobs parked for its data sets at once, no attempt spent, and forgets them; leaves the rest', async () => {
    queue = new Queue('compute', { connection: redisConnection(REDIS_URL, 'producer'), prefix });
    worker = new Worker('compute', null, { connection: redisConnection(REDIS_URL, 'worker'), prefix, autorun: false });
    const parked = new ParkedJobs(queue);
    await queue.add('pretrain', { v: 1 }, { jobId: 'pretrain-f', attempts: 4 });
    await queue.add('pretrain', { v: 1 }, { jobId: 'pretrain-m', attempts: 4 });
    // Each handed back by a worker that lacks its data set: delayed for an hour, parked.
    for (const [n, dataset] of [[1, 'fashion-mnist'], [2, 'mnist']] as const) {
      const job = await worker.getNextJob(`token-${n}`);
      if (!job?.id) throw new Error('expected a job');
      await job.moveToDelayed(Date.now() + 3_600_000, `token-${n}`);
      await parked.park(job.id, dataset);
    }
    expect(await queue.getJobCounts('wait', 'delayed')).toEqual({ wait: 0, delayed: 2 });

    // A worker that reads only Fashion-MNIST wakes its job, not the MNIST one.
    expect(await parked.wake(['fashion-mnist'])).toEqual(['pretrain-f']);
    expect(await queue.getJobState('pretrain-f')).toBe('waiting');
    expect(await queue.getJobState('pretrain-m')).toBe('delayed');
    expect((await queue.getJob('pretrain-f'))?.attemptsMade).toBe(0);
    // Forgotten once woken: the next wake finds nothing.
    expect(await parked.wake(['fashion-mnist'])).toEqual([]);

    // A parked job no longer delayed (taken meanwhile) is left as it is.
    const taken = await worker.getNextJob('token-3');
    expect(taken?.id).toBe('pretrain-f');
    await parked.park('pretrain-f', 'fashion-mnist');
    expect(await parked.wake(['fashion-mnist', 'mnist'])).toEqual(['pretrain-m']);
    expect(await queue.getJobState('pretrain-f')).toBe('active');
    expect(await queue.getJobState('pretrain-m')).toBe('waiting');
  });
});
