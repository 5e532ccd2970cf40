import type { Job, Queue } from 'bullmq';

/** The start of a job's log line that counts one hand-back made while a worker that has its data set sat idle. */
export const IDLE_HAND_BACK = 'handed back while a worker that has its data set sat idle, by';
/** The start of a job's log line for a hand-back made while every worker that has its data set was busy. */
export const BUSY_HAND_BACK = 'handed back while every worker that has its data set was busy, by';

/**
 * Records a hand-back in the job itself (its BullMQ log: queue dashboards show it, it goes with the
 * job), so the bound of missing-dataset.ts and the growth of its delay hold across workers and need
 * no column of their own (and nothing is written in Postgres for a hand-back).
 */
export async function recordHandBack(job: Job, workerId: string, reason: string, idle: boolean): Promise<void> {
  await job.log(`${idle ? IDLE_HAND_BACK : BUSY_HAND_BACK} ${workerId}: ${reason}`);
}

/** How often the job was handed back while a worker that has its data set sat idle, and while all were busy (its log lines saying so). */
export async function handBacks(queue: Queue, jobId: string): Promise<{ idle: number; busy: number }> {
  const { logs } = await queue.getJobLogs(jobId);
  return { idle: logs.filter((line) => line.startsWith(IDLE_HAND_BACK)).length, busy: logs.filter((line) => line.startsWith(BUSY_HAND_BACK)).length };
}
