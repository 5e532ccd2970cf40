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

  /**
   * Lists a job this worker just moved to delayed (after the move: a wake-up before it would find it
   * still active). `at`: when (default now), the order in which the parked jobs are woken.
   */
  async park(jobId: string, dataset: string, at = Date.now()): Promise<void> {
    const client = await this.queue.getBackend().client;
    await client.hset(this.key(dataset), { [jobId]: at });
  }

  /**
   * Promotes the job parked longest for one of `datasets` that is still delayed, up to `limit` of
   * them (a worker takes one job at a time: a job woken that it cannot take at once would only be
   * taken, and handed back again, by the worker that lacks its data set), and forgets each one it
   * looks at (one taken, removed or promoted meanwhile is left as it is). Returns the ids promoted.
   */
  async wake(datasets: readonly string[], limit = 1): Promise<string[]> {
    const client = await this.queue.getBackend().client;
    const parked: { id: string; key: string; at: number }[] = [];
    for (const dataset of datasets) {
      const key = this.key(dataset);
      for (const [id, at] of Object.entries(await client.hgetall(key))) parked.push({ id, key, at: Number(at) });
    }
    parked.sort((a, b) => a.at - b.at);
    const woken: string[] = [];
    for (const { id, key } of parked) {
      if (woken.length >= limit) break;
      await client.hdel(key, id);
      const job = await Job.fromId(this.queue, id);
      if (!job || !(await job.isDelayed())) continue;
      // Promoted by another worker meanwhile, or taken: nothing to do.
      if (await job.promote().then(() => true, () => false)) woken.push(id);
    }
    return woken;
  }
}
