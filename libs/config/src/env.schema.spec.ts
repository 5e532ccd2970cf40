import { apiEnvSchema, ConfigError, loadEnv, workerEnvSchema } from './env.schema';

describe('loadEnv', () => {
  it('applies the defaults beside each variable', () => {
    const env = loadEnv(apiEnvSchema, {});
    expect(env).toMatchObject({ PORT: 3000, HOST: '127.0.0.1', QUEUE_PREFIX: 'ddae', REDIS_URL: 'redis://127.0.0.1:6379', RECONCILE_MS: 30_000 });
    expect(loadEnv(workerEnvSchema, {})).toMatchObject({ DDAE_BACKEND: 'auto', HEARTBEAT_MS: 5_000, WORKER_AUTORUN: true });
  });

  it('reads the API\'s CORS origins and host names as lists; none given: no CORS, the default hosts', () => {
    const defaults = loadEnv(apiEnvSchema, {});
    expect(defaults.CORS_ORIGINS).toEqual([]);
    expect(defaults.ALLOWED_HOSTS).toBeUndefined();
    expect(loadEnv(apiEnvSchema, { CORS_ORIGINS: 'https://a.example, https://b.example:8443,', ALLOWED_HOSTS: 'api.example' })).toMatchObject({
      CORS_ORIGINS: ['https://a.example', 'https://b.example:8443'],
      ALLOWED_HOSTS: ['api.example'],
    });
  });

  it('validates the backend and the GPU a worker uses', () => {
    expect(loadEnv(workerEnvSchema, {})).toMatchObject({ DDAE_GPU: 'auto' });
    expect(loadEnv(workerEnvSchema, { DDAE_BACKEND: 'webgpu', DDAE_GPU: '1' })).toMatchObject({ DDAE_BACKEND: 'webgpu', DDAE_GPU: '1' });
    expect(loadEnv(workerEnvSchema, { DDAE_GPU: 'pci-0000_3b_00_0' })).toMatchObject({ DDAE_GPU: 'pci-0000_3b_00_0' });
    expect(() => loadEnv(workerEnvSchema, { DDAE_GPU: 'pci-3b:00.0' })).toThrow(/DDAE_GPU: .*pci-DDDD_BB_DD_F/);
    expect(() => loadEnv(workerEnvSchema, { DDAE_GPU: '-1' })).toThrow(/DDAE_GPU/);
    expect(() => loadEnv(workerEnvSchema, { DDAE_BACKEND: 'cuda' })).toThrow(/DDAE_BACKEND/);
  });

  it('coerces numbers and booleans from strings', () => {
    expect(loadEnv(workerEnvSchema, { HEARTBEAT_MS: '250', WORKER_AUTORUN: 'false' })).toMatchObject({ HEARTBEAT_MS: 250, WORKER_AUTORUN: false });
  });

  it('fails fast with one message naming every bad variable', () => {
    expect(() => loadEnv(apiEnvSchema, { PORT: 'eighty', DATABASE_URL: 'not a url', QUEUE_PREFIX: 'a:b' })).toThrow(ConfigError);
    try {
      loadEnv(apiEnvSchema, { PORT: 'eighty', DATABASE_URL: 'not a url', QUEUE_PREFIX: 'a:b' });
    } catch (error) {
      expect((error as Error).message).toMatch(/PORT/);
      expect((error as Error).message).toMatch(/DATABASE_URL/);
      expect((error as Error).message).toMatch(/QUEUE_PREFIX/);
    }
  });
});

describe('the CLI environment and the one default DATABASE_URL', () => {
  it('gives every app the same default database', async () => {
    const { apiEnvSchema, cliEnvSchema, DEFAULT_DATABASE_URL, loadEnv, workerEnvSchema } = await import('./index');
    expect(loadEnv(apiEnvSchema, {}).DATABASE_URL).toBe(DEFAULT_DATABASE_URL);
    expect(loadEnv(workerEnvSchema, {}).DATABASE_URL).toBe(DEFAULT_DATABASE_URL);
    expect(loadEnv(cliEnvSchema, {})).toEqual({ DDAE_API_URL: 'http://127.0.0.1:3000', DATABASE_URL: DEFAULT_DATABASE_URL });
    expect(() => loadEnv(cliEnvSchema, { DDAE_API_URL: 'not a url' })).toThrow(/DDAE_API_URL/);
  });
});
