import { createTestDatabase, freePort, startRedisServer, startTsProcess, uniqueQueuePrefix, waitFor, type ManagedProcess, type RedisServer, type TestDatabase } from '@ddae/testing';

// eslint-disable-next-line no-control-regex
const plain = (p: ManagedProcess) => p.output().replace(/\x1b\[[0-9;]*m/g, '');
const count = (text: string, re: RegExp) => text.split('\n').filter((line) => re.test(line)).length;

/**
 * A Redis outage, as the logs of a real API and a real worker tell it: one line when it goes down,
 * one when it is back, and nothing for each of the many reconnection attempts in between (which
 * printed a stack trace each before).
 */
describe('a Redis outage in the logs (real API and worker processes, a redis-server of the test)', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  let api: ManagedProcess;
  let worker: ManagedProcess;

  beforeAll(async () => {
    redis = await startRedisServer();
    db = await createTestDatabase();
    const common = { DATABASE_URL: db.url, REDIS_URL: redis.url, QUEUE_PREFIX: uniqueQueuePrefix('outage'), LOG_LEVEL: 'log' };
    api = startTsProcess('apps/api/src/main.ts', { ...common, PORT: String(await freePort()), RECONCILE_MS: '500' });
    worker = startTsProcess('apps/worker/src/main.ts', { ...common, WORKER_ID: 'outage-worker', DDAE_BACKEND: 'cpu', HEARTBEAT_MS: '500' });
    await waitFor('the API and the worker to start', async () => (/listening on/.test(plain(api)) && /backend cpu/.test(plain(worker))) || undefined, { timeoutMs: 60_000, describe: async () => `${api.output()}\n${worker.output()}` });
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    await redis?.dispose();
    await db?.drop();
  });

  it('says once that Redis is unreachable and once that it is back, whatever the retries', async () => {
    await redis.stop('SIGKILL');
    await waitFor('both to notice', async () => (/Redis is unreachable/.test(plain(api)) && /Redis is unreachable/.test(plain(worker))) || undefined, { timeoutMs: 20_000, describe: async () => `${api.output()}\n${worker.output()}` });
    // Long enough for many reconnection attempts (every 200 ms to 5 s) and reconciler passes (500 ms).
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    await redis.start();
    await waitFor('both to say it is back', async () => (/Redis is back after/.test(plain(api)) && /Redis is back after/.test(plain(worker))) || undefined, { timeoutMs: 20_000, describe: async () => `${api.output()}\n${worker.output()}` });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (const [name, p] of [['api', api], ['worker', worker]] as const) {
      const text = plain(p);
      expect([name, count(text, /Redis is unreachable \(.*ECONNREFUSED|Redis is unreachable \(Connection is closed/), count(text, /Redis is back after \d+\.\d s/)]).toEqual([name, 1, 1]);
      expect([name, count(text, /ECONNREFUSED/)]).toEqual([name, 1]);
      expect([name, text]).not.toEqual([name, expect.stringMatching(/TCPConnectWrap|queue error|reconcile failed/)]);
    }
  });
});
