import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { redisServerHasTls, startRedisServer, type RedisServer } from '@ddae/testing';
import { startStack, type Stack } from './stack';

const PASSWORD = 'e2e-redis-Pa55word';
/**
 * Debian's redis-server is built with TLS; where one is not, the password is still tested and the
 * TLS half is skipped, saying so. CI (CI set) installs Debian's: there a missing TLS fails loudly.
 */
const TLS = redisServerHasTls();
const NO_TLS = 'this redis-server was built without TLS (Debian\'s has it: apt-get install redis-server)';
if (!TLS) {
  if (process.env['CI']) throw new Error(`redis-security.e2e: ${NO_TLS}; CI must test TLS`);
  process.stderr.write(`redis-security.e2e: TLS not tested: ${NO_TLS}\n`);
}

describe(`Redis with a password${TLS ? ' over TLS' : ''}, through configuration only (REDIS_URL)`, () => {
  if (!TLS) it.skip(`over TLS (skipped: ${NO_TLS})`, () => undefined);
  let redis: RedisServer;
  let stack: Stack | undefined;

  beforeAll(async () => {
    redis = await startRedisServer({ password: PASSWORD, tls: TLS });
  });

  afterAll(async () => {
    await stack?.stop();
    await redis?.dispose();
  });

  it('refuses a client without the password', async () => {
    const client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...(TLS ? { tls: { ca: readFileSync(redis.caFile as string) } } : {}) });
    // The server answers the handshake with NOAUTH; ioredis reports it as an error event.
    const errors: string[] = [];
    client.on('error', (error: Error) => errors.push(error.message));
    await client.connect().catch((error: Error) => errors.push(error.message));
    await client.ping().catch((error: Error) => errors.push(error.message));
    client.disconnect();
    expect(errors.join('\n')).toMatch(/NOAUTH/);
  });

  it(`the API and a worker given ${TLS ? 'rediss://' : 'redis://'}:<password>@host:port run a sweep, and no process prints the password`, async () => {
    expect(redis.url).toMatch(TLS ? /^rediss:\/\/:[^@]+@127\.0\.0\.1:\d+$/ : /^redis:\/\/:[^@]+@127\.0\.0\.1:\d+$/);
    // The self-signed certificate is trusted the standard Node.js way: NODE_EXTRA_CA_CERTS.
    stack = await startStack({ workers: 1, redisUrl: redis.url, env: TLS ? { NODE_EXTRA_CA_CERTS: redis.caFile as string } : {} });
    const body = await stack.submit({
      name: 'e2e-redis-auth',
      dataset: 'fashion-mnist',
      models: [{ method: 'ddpm', unet: 'tiny' }],
      pretrain: { steps: 8, batchSize: 8, checkpointEvery: 8, trainSize: 128, seeds: [0], samples: false },
      probe: { layers: ['out_4'], timesteps: [10], epochs: 2, batchSize: 64, learningRate: 0.01, trainSize: 128, testSize: 64 },
      baselines: [],
    });
    expect(body).toMatchObject({ created: true, queued: true });
    expect((await stack.waitForSweep(body.id, 300_000)).status).toBe('SUCCEEDED');
    expect(await stack.db.prisma.probeResult.count()).toBe(1);
    expect(stack.logs()).not.toContain(PASSWORD);
    // The jobs really went through this server: its keys are there.
    const client = new Redis(redis.url, { lazyConnect: true, ...(TLS ? { tls: { ca: readFileSync(redis.caFile as string) } } : {}) });
    await client.connect();
    expect((await client.keys(`${stack.prefix}:*`)).length).toBeGreaterThan(0);
    client.disconnect();
  });
});
