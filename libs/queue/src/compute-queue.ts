import { Queue, type JobsOptions } from 'bullmq';
import { JOB_NAMES, QUEUES, jobIds, type BaselinePayload, type JobName, type PretrainPayload, type ProbePayload } from '@ddae/contracts';
import { redisConnection, withTimeout } from './connection';

/** Default options of every compute job. */
export const COMPUTE_JOB_DEFAULTS: JobsOptions = {
  /** Transient failures (lost Redis, killed child) retry with exponential backoff. */
  attempts: 4,
  backoff: { type: 'exponential', delay: 2_000 },
  /** Postgres holds the results; Redis keeps a little history for inspection. */
  removeOnComplete: { age: 24 * 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 5000 },
};

/** Offsets within a sweep's priority band (lower runs first). */
export const JOB_PRIORITY: Record<JobName, number> = {
  [JOB_NAMES.baseline]: 1,
  [JOB_NAMES.probe]: 2,
  [JOB_NAMES.pretrain]: 10,
};

/**
 * A job's BullMQ priority (lower runs first; BullMQ has no fair groups outside its Pro edition,
 * so fairness is encoded here). Each sweep priority 1..9 is a band of 1000. Within a band, cheap
 * work first (baselines, then probes: results appear early), then pretraining ordered by the
 * run's position in its sweep: a small sweep submitted after a big one starts its first run as
 * soon as a worker frees up, instead of after the big sweep's last.
 * @param sweepPriority the sweep's priority, 1..9. Default 5.
 * @param position the run's index among its sweep's pretraining runs. Default 0.
 */
export function jobPriority(name: JobName, sweepPriority = 5, position = 0): number {
  const band = Math.min(Math.max(Math.round(sweepPriority), 1), 9) * 1000;
  return band + JOB_PRIORITY[name] + (name === JOB_NAMES.pretrain ? Math.min(Math.max(position, 0), 980) : 0);
}

export interface ComputeQueueOptions {
  redisUrl: string;
  /** Key prefix. Default `ddae`. */
  prefix?: string;
  /** Errors of the queue's connection (a RedisOutageWatch takes the connection errors). Default: BullMQ's console.error. */
  onError?: (error: Error) => void;
}

export type EnqueueRequest = (
  | { name: typeof JOB_NAMES.pretrain; data: PretrainPayload }
  | { name: typeof JOB_NAMES.probe; data: ProbePayload }
  | { name: typeof JOB_NAMES.baseline; data: BaselinePayload }
) & {
  /** Overrides the job name's priority (lower runs first), e.g. for work known to be cheap. */
  priority?: number;
};

export function jobIdOf(request: EnqueueRequest): string {
  switch (request.name) {
    case JOB_NAMES.pretrain:
      return jobIds.pretrain(request.data.runId);
    case JOB_NAMES.probe:
      return jobIds.probe(request.data.probeTaskId);
    case JOB_NAMES.baseline:
      return jobIds.baseline(request.data.baselineId);
  }
}

/**
 * The typed producer of the compute queue. Job ids are deterministic, so adding the same work
 * twice while the first job still exists in Redis is a no-op.
 */
export class ComputeQueue {
  readonly queue: Queue;

  constructor(options: ComputeQueueOptions) {
    this.queue = new Queue(QUEUES.compute, {
      connection: redisConnection(options.redisUrl, 'producer'),
      prefix: options.prefix ?? 'ddae',
      defaultJobOptions: COMPUTE_JOB_DEFAULTS,
    });
    if (options.onError) this.queue.on('error', options.onError);
  }

  async enqueue(requests: EnqueueRequest[]): Promise<void> {
    if (requests.length === 0) return;
    await this.queue.addBulk(
      requests.map((r) => ({
        name: r.name,
        data: r.data,
        opts: { jobId: jobIdOf(r), priority: r.priority ?? jobPriority(r.name) },
      })),
    );
  }

  /** Removes waiting/delayed jobs by id (a running job is cancelled through Postgres state). */
  async removeWaiting(jobIdsToRemove: string[]): Promise<number> {
    let removed = 0;
    for (const id of jobIdsToRemove) {
      const job = await this.queue.getJob(id);
      if (!job) continue;
      const state = await job.getState();
      if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'waiting-children') {
        await job.remove().then(() => (removed += 1)).catch(() => undefined);
      }
    }
    return removed;
  }

  /**
   * Enqueues work again whose previous job may still sit in Redis as failed or completed (kept
   * for inspection): such a job would swallow a plain add with the same id, so it is removed first.
   */
  async requeue(requests: EnqueueRequest[]): Promise<void> {
    // States are looked up concurrently: the reconciler calls this for every queued row.
    const ended = await Promise.all(
      requests.map(async (request) => {
        const job = await this.queue.getJob(jobIdOf(request));
        return job && ['failed', 'completed'].includes(await job.getState()) ? job : null;
      }),
    );
    await Promise.all(ended.map((job) => job?.remove()));
    await this.enqueue(requests);
  }

  /** A cheap round trip to Redis, for health checks. */
  async ping(): Promise<void> {
    await this.queue.count();
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed');
  }

  async close(timeoutMs = 5_000): Promise<void> {
    await withTimeout(this.queue.close(), timeoutMs, 'queue close').catch(() => this.queue.disconnect());
  }
}
