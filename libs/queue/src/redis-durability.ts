import { Redis } from 'ioredis';
import { withTimeout } from './connection';

/** The part of an ioredis client the check uses. */
export interface RedisConfigReader {
  call(command: string, ...args: string[]): Promise<unknown>;
}

/**
 * What in a Redis's configuration can lose BullMQ's jobs, as warnings naming the fix (empty when
 * none): a maxmemory-policy other than `noeviction` (Redis would evict jobs and their locks under
 * memory pressure) and no persistence (neither AOF nor RDB snapshots: a restart comes back empty).
 * A Redis that forbids CONFIG (managed services, ACLs, a renamed command) yields one warning saying
 * it could not be checked.
 */
export async function redisDurabilityWarnings(client: RedisConfigReader): Promise<string[]> {
  let config: Map<string, string>;
  try {
    const reply = (await client.call('CONFIG', 'GET', 'maxmemory-policy', 'appendonly', 'save')) as string[];
    config = new Map(Array.from({ length: reply.length / 2 }, (_, i) => [reply[2 * i], reply[2 * i + 1]] as [string, string]));
  } catch (error) {
    return [`could not read Redis's configuration (CONFIG GET: ${(error as Error).message}): make sure yourself that its maxmemory-policy is noeviction and that it persists (appendonly yes or save snapshots)`];
  }
  const warnings: string[] = [];
  const policy = config.get('maxmemory-policy');
  if (policy !== undefined && policy !== 'noeviction') {
    warnings.push(`Redis's maxmemory-policy is ${policy}: under memory pressure it evicts keys, queued jobs and their locks among them; set maxmemory-policy noeviction`);
  }
  if (config.get('appendonly') !== 'yes' && !config.get('save')?.trim()) {
    warnings.push('Redis persists nothing (appendonly no, no save snapshots): a restart comes back with an empty queue (the reconciler re-offers queued work from Postgres, but jobs wait until it passes); set appendonly yes');
  }
  return warnings;
}

/** redisDurabilityWarnings over a connection of its own to `url`, closed at the end (it gives up rather than retry). */
export async function checkRedisDurability(url: string, timeoutMs = 5_000): Promise<string[]> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: timeoutMs, connectionName: 'ddae-config-check' });
  client.on('error', () => undefined);
  try {
    await withTimeout(client.connect(), timeoutMs, 'connecting to Redis');
    return await withTimeout(redisDurabilityWarnings(client), timeoutMs, 'reading the Redis configuration');
  } finally {
    client.disconnect();
  }
}
