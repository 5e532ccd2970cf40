import { Queue } from 'bullmq';
import { Registry } from 'prom-client';
import { deleteQueueKeys, freePort, uniqueQueuePrefix } from '@ddae/testing';
import { redisConnection, withTimeout } from './connection';
import { registerQueueDepth } from './metrics';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('ddae_queue_jobs (a real Redis)', () => {
  const prefix = uniqueQueuePrefix('metrics');
  let queue: Queue;
  afterAll(async () => {
    await queue?.close();
    await deleteQueueKeys(REDIS_URL, prefix);
  });

  it('counts waiting and prioritized jobs apart, per state', async () => {
    queue = new Queue('depth', { connection: redisConnection(REDIS_URL, 'producer'), prefix });
    await queue.add('a', {});
    await queue.addBulk([{ name: 'b', data: {}, opts: { priority: 5 } }, { name: 'c', data: {}, opts: { priority: 7 } }]);
    await queue.add('d', {}, { delay: 60_000 });
    const registry = new Registry();
    registerQueueDepth(registry, [queue]);
    const text = await registry.metrics();
    expect(text).toContain('ddae_queue_jobs{queue="depth",state="waiting"} 1\n');
    expect(text).toContain('ddae_queue_jobs{queue="depth",state="prioritized"} 2\n');
    expect(text).toContain('ddae_queue_jobs{queue="depth",state="delayed"} 1\n');
    expect(text).toContain('ddae_queue_jobs{queue="depth",state="active"} 0\n');
    expect(text).toContain('ddae_queue_redis_up 1\n');
  });

  it('answers with Redis away: no depth (no stale number to scale on), redis_up 0', async () => {
    // Nothing listens there; no reconnecting, so the queue closes at the end.
    const dead = new Queue('depth', { connection: { ...redisConnection(`redis://127.0.0.1:${await freePort()}`, 'producer'), retryStrategy: () => null }, prefix });
    dead.on('error', () => undefined);
    try {
      const registry = new Registry();
      registerQueueDepth(registry, [dead], 1_000);
      const text = await registry.metrics();
      expect(text).not.toMatch(/^ddae_queue_jobs\{/m);
      expect(text).toContain('ddae_queue_redis_up 0\n');
    } finally {
      await withTimeout(dead.close(), 2_000, 'closing').catch(() => undefined);
    }
  });
});
