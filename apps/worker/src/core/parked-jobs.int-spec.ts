import { Queue, Worker } from 'bullmq';
import { redisConnection } from '@ddae/queue';
import { useQueueParts } from '@ddae/testing';
import { ParkedJobs } from './parked-jobs';

describe('jobs parked for a worker that has their data set (a real Redis)', () => {
  const redis = useQueueParts('parked', (url, prefix) => ({
    queue: new Queue('compute', { connection: redisConnection(url, 'producer'), prefix }),
    worker: new Worker('compute', null, { connection: redisConnection(url, 'worker'), prefix, autorun: false }),
  }));

  it('wakes the job parked longest for its data sets, one at a time, no attempt spent, and forgets it; leaves the rest', async () => {
    const { queue, worker } = redis.parts;
    const parked = new ParkedJobs(queue);
    for (const id of ['pretrain-f1', 'pretrain-m', 'pretrain-f2']) await queue.add('pretrain', { v: 1 }, { jobId: id, attempts: 4 });
    // Each handed back by a worker that lacks its data set: delayed for an hour, parked, in this order.
    for (const [n, dataset] of [[1, 'fashion-mnist'], [2, 'mnist'], [3, 'fashion-mnist']] as const) {
      const job = await worker.getNextJob(`token-${n}`);
      if (!job?.id) throw new Error('expected a job');
      await job.moveToDelayed(Date.now() + 3_600_000, `token-${n}`);
      await parked.park(job.id, dataset, 1_000 * n);
    }
    expect(await queue.getJobCounts('wait', 'delayed')).toEqual({ wait: 0, delayed: 3 });

    // A worker that reads only Fashion-MNIST wakes the one parked first, not the MNIST one.
    expect(await parked.wake(['fashion-mnist'])).toEqual(['pretrain-f1']);
    expect(await queue.getJobState('pretrain-f1')).toBe('waiting');
    expect(await queue.getJobState('pretrain-f2')).toBe('delayed');
    expect(await queue.getJobState('pretrain-m')).toBe('delayed');
    expect((await queue.getJob('pretrain-f1'))?.attemptsMade).toBe(0);
    // Forgotten once woken: the next wake-up takes the next one.
    expect(await parked.wake(['fashion-mnist'])).toEqual(['pretrain-f2']);
    expect(await parked.wake(['fashion-mnist'])).toEqual([]);

    // A parked job no longer delayed (taken meanwhile) is skipped and forgotten.
    const taken = await worker.getNextJob('token-4');
    expect(taken?.id).toBe('pretrain-f1');
    await parked.park('pretrain-f1', 'fashion-mnist');
    expect(await parked.wake(['fashion-mnist', 'mnist'], 5)).toEqual(['pretrain-m']);
    expect(await queue.getJobState('pretrain-f1')).toBe('active');
    expect(await queue.getJobState('pretrain-m')).toBe('waiting');
    expect(await parked.wake(['fashion-mnist', 'mnist'], 5)).toEqual([]);
  });
});
