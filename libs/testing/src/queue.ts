import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** A queue prefix no other test run shares (keys of the shared Redis never collide). */
export function uniqueQueuePrefix(label = 'test'): string {
  return `ddae-${label}-${randomBytes(5).toString('hex')}`;
}

/** Deletes every Redis key under a prefix; call after a test that used it. */
export async function deleteQueueKeys(redisUrl: string, prefix: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    redis.disconnect();
  }
}

/** Job ids currently held in a queue, whatever their state. */
export async function queuedJobIds(redisUrl: string, prefix: string, queue: string): Promise<string[]> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:${queue}:*`, 'COUNT', 500);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    const jobKey = new RegExp(`^${prefix}:${queue}:((?:pretrain|probe|baseline)-[0-9a-f-]+)$`);
    return keys.map((k) => jobKey.exec(k)?.[1]).filter((id): id is string => Boolean(id)).sort();
  } finally {
    redis.disconnect();
  }
}
