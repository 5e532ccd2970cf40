import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { createPrismaClient, DEFAULT_DATABASE_URL, formatDatabaseUrl, parseDatabaseUrl, quoteIdent, withDatabase, type PrismaClient } from '@ddae/db';
import { migrateDeploy } from '@ddae/migrations';

export interface TestDatabase {
  /** postgresql:// URL of the new database. */
  url: string;
  /** Name of the new database (`ddae_test_<random>`). */
  name: string;
  prisma: PrismaClient;
  /**
   * TRUNCATE ... CASCADE of these tables. A live app (a reconciler, a worker) may hold row locks
   * on them in another order: Postgres then breaks the deadlock (40P01) or the lock wait times out
   * (55P03) and this tries again, up to 10 times.
   */
  truncate(...tables: string[]): Promise<void>;
  /** Disconnects the client and drops the database (WITH (FORCE)). Idempotent. */
  drop(): Promise<void>;
}

export interface CreateTestDatabaseOptions {
  /** The server to create it on: this URL's host, port and credentials (default TEST_DATABASE_URL, DATABASE_URL, then the local default). */
  serverUrl?: string;
  /** Skip migrations (an empty database). */
  migrate?: boolean;
}

async function adminQuery(serverUrl: string, sql: string): Promise<void> {
  const admin = new Client({ ...withDatabase(parseDatabaseUrl(serverUrl), 'postgres'), application_name: 'ddae-testing' });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** A deadlock (40P01) or a lock wait that timed out (55P03). */
function isLockConflict(error: unknown): boolean {
  const text = error instanceof Error ? error.message : String(error);
  return /40P01|55P03|deadlock detected|lock timeout/.test(text);
}

/**
 * A fresh, uniquely named database with every migration applied (plain SQL files, no schema
 * engine: ~0.1 s), and a Prisma client on it.
 */
export async function createTestDatabase(options: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  const serverUrl = options.serverUrl ?? process.env['TEST_DATABASE_URL'] ?? process.env['DATABASE_URL'] ?? DEFAULT_DATABASE_URL;
  const name = `ddae_test_${randomBytes(6).toString('hex')}`;
  const url = formatDatabaseUrl(withDatabase(parseDatabaseUrl(serverUrl), name));
  await adminQuery(serverUrl, `CREATE DATABASE ${quoteIdent(name)}`);
  try {
    if (options.migrate !== false) await migrateDeploy(url);
  } catch (error) {
    await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`).catch(() => undefined);
    throw error;
  }
  const prisma = createPrismaClient(url, { max: 4 });
  let dropped = false;
  return {
    url,
    name,
    prisma,
    async truncate(...tables: string[]) {
      const sql = `TRUNCATE ${tables.map(quoteIdent).join(', ')} CASCADE`;
      for (let attempt = 1; ; attempt++) {
        try {
          await prisma.$transaction([prisma.$executeRawUnsafe("SET LOCAL lock_timeout = '2s'"), prisma.$executeRawUnsafe(sql)]);
          return;
        } catch (error) {
          if (attempt >= 10 || !isLockConflict(error)) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
        }
      }
    },
    async drop() {
      if (dropped) return;
      dropped = true;
      await prisma.$disconnect().catch(() => undefined);
      await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    },
  };
}
