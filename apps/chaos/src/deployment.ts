import { setEnv } from '@ddae/config';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TokenRepository } from '@ddae/db';
import { createTestDatabase, freePort, startRedisServer, startTsProcess, startWorkerProcess, waitFor, type ManagedProcess, type RedisServer, type TestDatabase } from '@ddae/testing';

/**
 * A whole deployment as real processes, isolated from everything else on the machine: a fresh
 * Postgres database, a redis-server of its own (so restarting it disturbs nobody), the API and
 * `workers` worker processes with fast failure detection.
 */
export interface Deployment {
  base: string;
  token: string;
  db: TestDatabase;
  redis: RedisServer;
  /** Current process of each worker slot (a restarted worker replaces its slot's process). */
  workers: ManagedProcess[];
  workerId(slot: number): string;
  startWorker(slot: number): void;
  stop(): Promise<void>;
}

export async function startDeployment(options: { workers: number; verbose: boolean }): Promise<Deployment> {
  const redis = await startRedisServer();
  const db = await createTestDatabase();
  const { token } = await new TokenRepository(db.prisma).create('chaos', 'submit');
  const artifacts = await mkdtemp(path.join(tmpdir(), 'ddae-chaos-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  if (options.verbose) setEnv('DDAE_TEST_VERBOSE', '1');
  const common = { DATABASE_URL: db.url, REDIS_URL: redis.url, QUEUE_PREFIX: 'ddae-chaos', ARTIFACT_DIR: artifacts, LOG_LEVEL: 'log' };
  // Reconcile every 2 s; a worker silent for 5 s (5 missed heartbeats) is dead and its rows requeued.
  const api = startTsProcess('apps/api/src/main.ts', { ...common, PORT: String(port), RECONCILE_MS: '2000', WORKER_STALE_MS: '5000' }, 'api');
  const workerId = (slot: number) => `chaos-worker-${slot + 1}`;
  const workers: ManagedProcess[] = [];
  const startWorker = (slot: number) => {
    // The same id after a restart, as a StatefulSet or a systemd unit with WORKER_ID would give.
    workers[slot] = startWorkerProcess(
      {
        ...common,
        WORKER_ID: workerId(slot),
        HEARTBEAT_MS: '1000',
        // A killed worker's job comes back after its lock (4 s) expires, found within 2 s.
        LOCK_DURATION_MS: '4000',
        STALLED_INTERVAL_MS: '2000',
        SHUTDOWN_GRACE_MS: '10000',
        DDAE_BACKEND: 'wasm',
        DDAE_WASM_THREADS: '1',
      },
      workerId(slot),
    );
  };
  for (let slot = 0; slot < options.workers; slot++) startWorker(slot);
  await waitFor('the API to answer /health', async () => ((await fetch(`${base}/health`).catch(() => null))?.ok ? true : undefined), {
    timeoutMs: 60_000,
    describe: async () => api.output().slice(-2000),
  });
  return {
    base,
    token,
    db,
    redis,
    workers,
    workerId,
    startWorker,
    async stop() {
      await Promise.all([api, ...workers].map((p) => p.stop(15_000)));
      await db.drop();
      await redis.dispose();
      await rm(artifacts, { recursive: true, force: true });
    },
  };
}
