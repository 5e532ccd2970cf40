import type { Job, Queue } from 'bullmq';

/** The start of a job's log line that counts one hand-back made while a worker that has its data set sat idle. */
export const IDLE_HAND_BACK = 'handed back while a worker that has its data set sat idle, by';

/**
 * Counts a hand-back in the job itself (its BullMQ log: queue dashboards show it, it goes with the
 * job), so the bound of missing-dataset.ts holds across workers and needs no column of its own.
 */
export async function recordIdleHandBack(job: Job, workerId: string, reason: string): Promise<void> {
  await job.log(`${IDLE_HAND_BACK} ${workerId}: ${reason}`);
}

/** How often the job was handed back while a worker that has its data set sat idle (its log lines saying so). */
export async function idleHandBacks(queue: Queue, jobId: string): Promise<number> {
  const { logs } = await queue.getJobLogs(jobId);
  return logs.filter((line) => line.startsWith(IDLE_HAND_BACK)).length;
}
