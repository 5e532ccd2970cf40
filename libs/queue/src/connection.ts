import type { RedisOptions } from 'bullmq';

/**
 * BullMQ connection options from a Redis URL (`redis://:password@host:port/db`, or `rediss://`
 * for TLS). Worker connections must not give up on a command (`maxRetriesPerRequest: null`);
 * producers fail fast instead of queueing commands while Redis is away.
 */
export function redisConnection(url: string, role: 'producer' | 'worker'): RedisOptions {
  return {
    url,
    maxRetriesPerRequest: role === 'worker' ? null : 3,
    enableOfflineQueue: role === 'worker',
    connectionName: `ddae-${role}`,
    // Reconnect forever with a capped delay: Redis restarts are survivable, not fatal.
    retryStrategy: (times: number) => Math.min(200 * times, 5_000),
  };
}

/** Resolves with the promise, or rejects after `ms` naming what hung (worker.close() can hang). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
