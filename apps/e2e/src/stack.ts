import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApiClient } from '@ddae/api-client';
import type { SweepDetail, SweepSubmitted } from '@ddae/contracts';
import { TokenRepository } from '@ddae/db';
import { createTestDatabase, deleteQueueKeys, freePort, startTsProcess, startWorkerProcess, uniqueQueuePrefix, waitFor, type ManagedProcess, type TestDatabase } from '@ddae/testing';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface Stack {
  base: string;
  /** The deployment's Redis key prefix: deleting its keys is a Redis that came back empty. */
  prefix: string;
  /** The API token (scope submit) this stack's requests send. */
  token: string;
  /** The workers' ARTIFACT_DIR (a temporary directory, removed by stop()). */
  artifacts: string;
  db: TestDatabase;
  api: ManagedProcess;
  workers: ManagedProcess[];
  /** The last lines every process printed, for failure messages. */
  logs(): string;
  /** The API's client (libs/api-client), with this stack's token: every answer parsed with its contract. */
  client: ApiClient;
  /** Submits a spec (JSON); created: false is a replay of the idempotency key, queued: false a 202. */
  submit(spec: unknown, idempotencyKey?: string): Promise<SweepSubmitted>;
  waitForSweep(id: string, timeoutMs: number): Promise<SweepDetail>;
  /** Starts one more worker (`e2e-worker-<n>`) with the stack's environment plus `env`; stopped with the stack. */
  addWorker(env?: Record<string, string>): ManagedProcess;
  /** Stops the API process (SIGTERM) and starts a new one on the same port. */
  restartApi(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A whole deployment as real processes: the API and `workers` worker processes over a fresh
 * database, a unique queue prefix and a temporary artifact directory.
 */
export async function startStack(options: {
  workers: number;
  workerEnv?: Record<string, string>;
  /** Per-worker additions to workerEnv (index i for worker i + 1), e.g. a different backend. */
  workerEnvs?: Record<string, string>[];
  /** Environment of every process, the API's included (e.g. NODE_EXTRA_CA_CERTS). */
  env?: Record<string, string>;
  /** The deployment's Redis. Default REDIS_URL, the machine's shared one. */
  redisUrl?: string;
  /** The PostgreSQL server its database is created on. Default: TEST_DATABASE_URL / DATABASE_URL, the shared one. */
  databaseServerUrl?: string;
}): Promise<Stack> {
  const redisUrl = options.redisUrl ?? REDIS_URL;
  const db = await createTestDatabase(options.databaseServerUrl ? { serverUrl: options.databaseServerUrl } : {});
  // Writes need a token of scope submit (API_AUTH defaults to writes).
  const { token } = await new TokenRepository(db.prisma).create('e2e', 'submit');
  const artifacts = await mkdtemp(path.join(tmpdir(), 'ddae-e2e-'));
  const prefix = uniqueQueuePrefix('e2e');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const common = { DATABASE_URL: db.url, REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, ARTIFACT_DIR: artifacts, LOG_LEVEL: 'log', ...options.env };
  const apiEnv = { ...common, PORT: String(port), RECONCILE_MS: '2000' };
  let api = startTsProcess('apps/api/src/main.ts', apiEnv);
  const startWorker = (i: number, env?: Record<string, string>) =>
    startWorkerProcess({ ...common, WORKER_ID: `e2e-worker-${i + 1}`, HEARTBEAT_MS: '1000', DDAE_BACKEND: 'wasm', DDAE_WASM_THREADS: '1', DDAE_NATIVE_THREADS: '1', ...env }, `worker-${i + 1}`);
  const workers = Array.from({ length: options.workers }, (_, i) => startWorker(i, { ...options.workerEnv, ...options.workerEnvs?.[i] }));
  const client = new ApiClient(base, { token });
  const logs = () => [api, ...workers].map((p, i) => `--- ${i === 0 ? 'api' : `worker-${i}`}\n${p.output().slice(-2500)}`).join('\n');
  const healthy = () => waitFor('the API to answer /health', async () => client.health().then(() => true, () => undefined), { timeoutMs: 120_000, describe: async () => logs() });
  try {
    await healthy();
  } catch (error) {
    // Leave nothing running behind a failed start (jest would wait for it forever).
    await Promise.all([api, ...workers].map((p) => p.stop()));
    await db.drop();
    await rm(artifacts, { recursive: true, force: true });
    throw error;
  }
  return {
    base,
    prefix,
    token,
    artifacts,
    db,
    get api() {
      return api;
    },
    workers,
    logs,
    client,
    addWorker(env) {
      const worker = startWorker(workers.length, env);
      workers.push(worker);
      return worker;
    },
    submit: (spec, idempotencyKey) => client.submitSweep({ json: spec }, { idempotencyKey }),
    waitForSweep: (id, timeoutMs) =>
      waitFor(`sweep ${id} to finish`, async () => {
        const body = await client.getSweep(id);
        return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(body.status) ? body : undefined;
      }, { timeoutMs, intervalMs: 500, describe: async () => `${JSON.stringify(await client.getSweep(id))}\n${logs()}` }),
    async restartApi() {
      expect(await api.stop()).toBe(0);
      api = startTsProcess('apps/api/src/main.ts', apiEnv);
      await healthy();
    },
    async stop() {
      await Promise.all([api, ...workers].map((p) => p.stop()));
      // A test's own Redis may be down or gone by now: nothing of the shared one to clean then.
      if (redisUrl === REDIS_URL) await deleteQueueKeys(REDIS_URL, prefix);
      await db.drop();
      await rm(artifacts, { recursive: true, force: true });
    },
  };
}

/** Pids of a process's children (the worker's compute child). */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)]).toString().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
