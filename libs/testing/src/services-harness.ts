import type { PrismaClient } from '@ddae/db';
import { createTestDatabase, type TestDatabase } from './database';
import { deleteQueueKeys, uniqueQueuePrefix } from './queue';

/** A queue of the suite's choosing (libs/testing cannot import @ddae/queue: its specs import this library). */
export interface ClosableQueue {
  close(): Promise<void>;
}

/** What a spec's hooks reach through `useServicesHarness`: the current suite's and test's parts. */
export interface ServicesHarness<Q, S> {
  readonly redisUrl: string;
  /** A database of this suite's own, migrated once, dropped after the suite. */
  readonly db: TestDatabase;
  /** This test's queue prefix (a new one per test; its keys are deleted after the test). */
  readonly prefix: string;
  /** The queue `options.queue` made on this test's prefix. */
  readonly queue: Q;
  /** What `create` built for this test. */
  readonly services: S;
}

export interface ServicesHarnessOptions<Q extends ClosableQueue, S> {
  /** Makes this test's queue on its prefix (closed after the test). */
  queue: (redisUrl: string, prefix: string) => Q;
  /** Builds the services under test from the suite's database and this test's queue. */
  services: (prisma: PrismaClient, queue: Q) => S;
  /** Tables emptied before each test (default: sweeps, baselines, workers). */
  truncate?: string[];
}

/**
 * Registers the jest hooks of an integration spec that drives domain services over the real
 * Postgres and Redis: one database per suite, and per test a fresh queue prefix, a queue on it, the
 * services built from both, and the given tables emptied. The factories are arguments: a domain
 * library's specs pass their own, while the library itself never imports this one (the boundary
 * rules forbid it), and this one never imports the queue library (whose specs use it).
 */
export function useServicesHarness<Q extends ClosableQueue, S>(label: string, options: ServicesHarnessOptions<Q, S>): ServicesHarness<Q, S> {
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const tables = options.truncate ?? ['sweeps', 'baselines', 'workers'];
  let db: TestDatabase | undefined;
  let current: { prefix: string; queue: Q; services: S } | undefined;
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`useServicesHarness(${label}): ${what} is only there inside a test`);
    return value;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  beforeEach(async () => {
    const prefix = uniqueQueuePrefix(label);
    const queue = options.queue(redisUrl, prefix);
    current = { prefix, queue, services: options.services(need(db, 'the database').prisma, queue) };
    await need(db, 'the database').truncate(...tables);
  });
  afterEach(async () => {
    if (!current) return;
    const { queue, prefix } = current;
    current = undefined;
    await queue.close();
    await deleteQueueKeys(redisUrl, prefix);
  });
  afterAll(async () => {
    await db?.drop();
  });

  return {
    redisUrl,
    get db() {
      return need(db, 'the database');
    },
    get prefix() {
      return need(current, 'the queue prefix').prefix;
    },
    get queue() {
      return need(current, 'the queue').queue;
    },
    get services() {
      return need(current, 'the services').services;
    },
  };
}
