import { Queue, Worker } from 'bullmq';
import { redisConnection } from '@ddae/queue';
import { useQueueParts } from '@ddae/testing';
import { handBacks, recordHandBack } from './hand-back-log';

describe('the hand-back count of a job (a real Redis)', () => {
  const redis = useQueueParts('hand-back', (url, prefix) => ({
    queue: new Queue('compute', { connection: redisConnection(url, 'producer'), prefix }),
    worker: new Worker('compute', null, { connection: redisConnection(url, 'worker'), prefix, autorun: false }),
  }));

  it('survives each hand-back (moveToDelayed, no attempt spent) and counts only its own lines', async () => {
    const { queue, worker } = redis.parts;
    await queue.add('pretrain', { v: 1 }, { jobId: 'pretrain-x', attempts: 4 });
    expect(await handBacks(queue, 'pretrain-x')).toEqual({ idle: 0, busy: 0 });
    for (let n = 1; n <= 3; n++) {
      const job = await worker.getNextJob(`token-${n}`);
      expect(job?.id).toBe('pretrain-x');
      if (!job) return;
      await recordHandBack(job, 'w-1', 'it cannot read data set fashion-mnist', true);
      if (n === 2) await recordHandBack(job, 'w-1', 'it cannot read data set fashion-mnist', false);
      await job.log('some other line');
      await job.moveToDelayed(Date.now() - 1, `token-${n}`);
      // Back in wait (its delay is over) with the count, and no attempt spent.
      await queue.promoteJobs();
      expect(await handBacks(queue, 'pretrain-x')).toEqual({ idle: n, busy: n >= 2 ? 1 : 0 });
      expect((await queue.getJob('pretrain-x'))?.attemptsMade).toBe(0);
    }
    expect((await queue.getJobLogs('pretrain-x')).logs[0]).toBe('handed back while a worker that has its data set sat idle, by w-1: it cannot read data set fashion-mnist');
  });
});
