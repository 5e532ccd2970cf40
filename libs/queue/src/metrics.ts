import { Gauge, type Registry } from 'prom-client';
import { withTimeout } from './connection';

/** The queue states `ddae_queue_jobs` reports (BullMQ keeps prioritized waiting jobs apart from `waiting`). */
export const QUEUE_DEPTH_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed'] as const;

/** What the depth gauge reads: a BullMQ queue (its `getJobCounts`) under a name. */
export interface CountedQueue {
  name: string;
  getJobCounts(...states: string[]): Promise<Record<string, number>>;
}

/**
 * Registers `ddae_queue_jobs{queue,state}` (jobs per state, read from Redis at each scrape) and
 * `ddae_queue_redis_up` (1 when that read answered). With Redis away the scrape still answers:
 * the depth series are left out (no stale number for an autoscaler to act on) and redis_up is 0.
 */
export function registerQueueDepth(registry: Registry, queues: CountedQueue[], timeoutMs = 2_000): void {
  // One read of Redis serves both gauges of a scrape (the registry collects them concurrently).
  let inflight: Promise<(readonly [string, Record<string, number>])[] | undefined> | undefined;
  const read = () =>
    (inflight ??= withTimeout(Promise.all(queues.map(async (q) => [q.name, await q.getJobCounts(...QUEUE_DEPTH_STATES)] as const)), timeoutMs, 'reading the queue depths')
      .catch(() => undefined)
      .finally(() => (inflight = undefined)));
  new Gauge({
    name: 'ddae_queue_jobs',
    help: 'Jobs in each queue by state (waiting + prioritized: waiting for a worker)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const all = await read();
      this.reset();
      for (const [queue, counts] of all ?? []) for (const state of QUEUE_DEPTH_STATES) this.set({ queue, state }, counts[state] ?? 0);
    },
  });
  new Gauge({
    name: 'ddae_queue_redis_up',
    help: 'Whether the read of the queue depths from Redis answered (1) or not (0)',
    registers: [registry],
    async collect() {
      this.set((await read()) === undefined ? 0 : 1);
    },
  });
}
