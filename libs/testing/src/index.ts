export { createTestDatabase, type CreateTestDatabaseOptions, type TestDatabase } from './database';
export { uniqueQueuePrefix, deleteQueueKeys, queuedJobIds } from './queue';
export { waitFor } from './wait';
export { startTsProcess, startWorkerProcess, ensureWorkerBuild, freePort, type ManagedProcess } from './process';
export { startRedisServer, redisServerHasTls, type RedisServer, type RedisServerOptions } from './redis-server';
export { startPostgresServer, postgresBinDir, type PostgresServer, type PostgresServerOptions } from './postgres-server';
export { seedFinishedSweep, type FinishedSweep, type FinishedSweepOptions } from './finished-sweep';
export { Chromium, BrowserPage, findChromium, type Viewport } from './chromium';
export { useServicesHarness, type ServicesHarness, type ServicesHarnessOptions } from './services-harness';
