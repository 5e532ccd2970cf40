import { Redis } from 'ioredis';
import { redisDurabilityWarnings } from '@ddae/queue';
import { createTestDatabase, freePort, startRedisServer, startTsProcess, uniqueQueuePrefix, waitFor, type RedisServer } from '@ddae/testing';

/** The check against real redis-servers started with the settings under test. */
describe("the API's warning about a Redis that can lose jobs", () => {
  const servers: RedisServer[] = [];
  const clients: Redis[] = [];
  afterAll(async () => {
    clients.forEach((c) => c.disconnect());
    await Promise.all(servers.map((s) => s.dispose()));
  });
  const warningsOf = async (args: string[]) => {
    const server = await startRedisServer({ args });
    servers.push(server);
    const client = new Redis(server.url);
    clients.push(client);
    return { server, warnings: await redisDurabilityWarnings(client) };
  };

  it('names an evicting policy and the missing persistence, each with its fix', async () => {
    const { warnings } = await warningsOf(['--maxmemory-policy', 'allkeys-lru']);
    expect(warnings).toEqual([
      expect.stringMatching(/^Redis's maxmemory-policy is allkeys-lru: .*set maxmemory-policy noeviction$/),
      expect.stringMatching(/^Redis persists nothing .*set appendonly yes$/),
    ]);
  });

  it('says nothing of a Redis with noeviction and AOF, or with RDB snapshots', async () => {
    expect((await warningsOf(['--maxmemory-policy', 'noeviction', '--appendonly', 'yes'])).warnings).toEqual([]);
    expect((await warningsOf(['--save', '3600 1'])).warnings).toEqual([]);
  });

  it('says it could not check a Redis that forbids CONFIG', async () => {
    const { warnings } = await warningsOf(['--rename-command', 'CONFIG', '']);
    expect(warnings).toEqual([expect.stringMatching(/^could not read Redis's configuration \(CONFIG GET: ERR unknown command 'CONFIG'.*\): make sure yourself that its maxmemory-policy is noeviction/)]);
  });

  it('a real API process prints both warnings at start', async () => {
    const server = await startRedisServer({ args: ['--maxmemory-policy', 'volatile-lru'] });
    servers.push(server);
    const db = await createTestDatabase();
    const api = startTsProcess('apps/api/src/main.ts', { DATABASE_URL: db.url, REDIS_URL: server.url, QUEUE_PREFIX: uniqueQueuePrefix('redis-check'), PORT: String(await freePort()), RECONCILE_MS: '0', LOG_LEVEL: 'log' });
    try {
      await waitFor('both warnings', async () => (/maxmemory-policy is volatile-lru/.test(api.output()) && /Redis persists nothing/.test(api.output())) || undefined, { timeoutMs: 60_000, describe: async () => api.output() });
      // eslint-disable-next-line no-control-regex
      expect(api.output().replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/WARN \[Redis\] Redis's maxmemory-policy is volatile-lru/);
    } finally {
      expect(await api.stop()).toBe(0);
      await db.drop();
    }
  });
});
