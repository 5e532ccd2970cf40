import { Job, type Queue } from 'bullmq';

/**
 * Jobs handed back, delayed, by a worker that cannot read their data set, listed per data set
 * (`<prefix>:compute:parked:<dataset>`, a Redis hash: job id -> when it was parked) so that a worker that can read it
 * wakes them (promotes them to wait) as soon as it is idle. The delay of a hand-back then only says
 * how often the worker that lacks the data set looks at the job again: it can grow (fewer claims of
 * work it cannot run) without the job waiting it out once a worker that has the data set is free.
 * A wake-up lost (a worker killed between its pop and its promote) costs the job at most its delay.
 */
export class ParkedJobs {
  constructor(private readonly queue: Queue) {}

  private key(dataset: string): string {
    return this.queue.toKey(`parked:${dataset}`);
  }

  /** Lists a job this worker just moved to delayed (after the move: a wake-up before it would find it still active). */
  async park(jobId: string, dataset: string): Promise<void> {
    const client = await this.queue.getBackend().client;
    await client.hset(this.key(dataset), { [jobId]: Date.now() });
  }

  /**
   * Promotes every job parked for one of `datasets` that is still delayed (one taken, removed or
   * promoted meanwhile is left as it is) and forgets them. Returns the ids promoted.
   */
  async wake(datasets: readonly string[]): Promise<string[]> {
    const client = await this.queue.getBackend().client;
    const woken: string[] = [];
    for (const dataset of datasets) {
      const key = this.key(dataset);
      const ids = Object.keys(await client.hgetall(key));
      if (ids.length === 0) continue;
      // Only the ids read: one parked meanwhile stays for the next wake-up.
      await client.hdel(key, ...ids);
      for (const id of ids) {
        const job = await Job.fromId(this.queue, id);
        if (!job || !(await job.isDelayed())) continue;
        // Promoted by someone else meanwhile, or taken: nothing to do.
        const promoted = await job.promote().then(() => true, () => false);
        if (promoted) woken.push(id);
      }
    }
    return woken;
  }
}
