import { randomUUID } from 'node:crypto';
import { Client, type ClientConfig } from 'pg';
import { parseDatabaseUrl, quoteIdent, withDatabase, type PgConnectionFields } from '@ddae/db';
import { defaultMigrationsDir, readMigrations, scriptMatchesChecksum, type MigrationFile } from './migrations-dir';

/** The advisory lock key of Prisma's schema engine: this runner and `prisma migrate` exclude each other. */
export const PRISMA_MIGRATE_ADVISORY_LOCK = 72707369;

/** The table exactly as Prisma's schema engine creates it on PostgreSQL. */
export const PRISMA_MIGRATIONS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);`;

export interface MigrateOptions {
  /** Defaults to the repository's prisma/migrations (or `DDAE_MIGRATIONS_DIR`). */
  migrationsDir?: string;
  /** How long to wait for another process's migration lock, in ms (default 60 s). */
  lockTimeoutMs?: number;
  /** Progress lines (default: silent). */
  log?: (line: string) => void;
}

export interface AppliedMigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

export interface MigrationStatus {
  /** Whether `_prisma_migrations` exists. */
  initialized: boolean;
  /** Local migrations applied successfully, in order. */
  applied: string[];
  /** Local migrations not applied yet, in order. */
  pending: string[];
  /** Migrations whose last attempt failed (must be resolved before deploy). */
  failed: string[];
  /** Applied migrations whose file changed since. */
  modified: string[];
  /** Applied to the database but absent from the migrations directory. */
  missingLocally: string[];
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

function clientConfig(fields: PgConnectionFields): ClientConfig {
  return { ...fields, application_name: 'ddae-migrate' };
}

/** Connects to the database, creating it first when it does not exist. */
async function connectCreatingDatabase(fields: PgConnectionFields): Promise<Client> {
  const client = new Client(clientConfig(fields));
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    if ((error as { code?: string }).code !== '3D000') throw error; // invalid_catalog_name
  }
  const admin = new Client(clientConfig(withDatabase(fields, 'postgres')));
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(fields.database)}`);
  } catch (error) {
    // 42P04 duplicate_database; 23505 when two processes race on pg_database's unique index.
    const code = (error as { code?: string }).code;
    if (code !== '42P04' && code !== '23505') throw error;
  } finally {
    await admin.end();
  }
  const created = new Client(clientConfig(fields));
  await created.connect();
  return created;
}

async function readAppliedRows(client: Client): Promise<AppliedMigrationRow[] | null> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('_prisma_migrations')::text AS t`);
  if (!exists.rows[0]?.t) return null;
  const result = await client.query<AppliedMigrationRow>(
    `SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count
       FROM _prisma_migrations ORDER BY started_at ASC`,
  );
  return result.rows;
}

function computeStatus(rows: AppliedMigrationRow[] | null, local: MigrationFile[]): MigrationStatus {
  const live = (rows ?? []).filter((row) => row.rolled_back_at === null);
  const done = new Map(live.filter((row) => row.finished_at !== null).map((row) => [row.migration_name, row]));
  const failedNames = new Set(live.filter((row) => row.finished_at === null).map((row) => row.migration_name));
  const localNames = new Set(local.map((migration) => migration.name));
  return {
    initialized: rows !== null,
    applied: local.filter((m) => done.has(m.name)).map((m) => m.name),
    pending: local.filter((m) => !done.has(m.name) && !failedNames.has(m.name)).map((m) => m.name),
    failed: [...failedNames].filter((name) => !done.has(name)),
    modified: local
      .filter((m) => {
        const row = done.get(m.name);
        return row !== undefined && !scriptMatchesChecksum(m.script, row.checksum);
      })
      .map((m) => m.name),
    missingLocally: [...done.keys()].filter((name) => !localNames.has(name)),
  };
}

/** Applied / pending / failed / modified migrations of a database (read-only; a missing database has everything pending). */
export async function migrationStatus(databaseUrl: string, options: MigrateOptions = {}): Promise<MigrationStatus> {
  const local = readMigrations(options.migrationsDir ?? defaultMigrationsDir());
  const client = new Client(clientConfig(parseDatabaseUrl(databaseUrl)));
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    if ((error as { code?: string }).code === '3D000') return computeStatus(null, local);
    throw error;
  }
  try {
    return computeStatus(await readAppliedRows(client), local);
  } finally {
    await client.end();
  }
}

/**
 * `prisma migrate deploy`, without the native engine: creates the database if missing, then applies
 * the pending migrations in order, recording each in `_prisma_migrations` exactly as Prisma does
 * (a row with the file's sha256 when it starts, `finished_at` and `applied_steps_count = 1` when it
 * succeeds, the error in `logs` when it fails). Holds Prisma's advisory lock throughout, so
 * concurrent deploys (ours or Prisma's) run one after the other and the later one applies nothing.
 * Refuses to run when an applied migration's file changed or a previous attempt failed.
 */
export async function migrateDeploy(databaseUrl: string, options: MigrateOptions = {}): Promise<{ applied: string[] }> {
  const migrationsDir = options.migrationsDir ?? defaultMigrationsDir();
  const log = options.log ?? (() => undefined);
  const local = readMigrations(migrationsDir);
  const client = await connectCreatingDatabase(parseDatabaseUrl(databaseUrl));
  client.on('error', () => undefined); // a dropped idle connection must not crash the process
  try {
    await client.query(`SET lock_timeout = ${Math.max(1, Math.round(options.lockTimeoutMs ?? 60_000))}`);
    try {
      await client.query(`SELECT pg_advisory_lock(${PRISMA_MIGRATE_ADVISORY_LOCK})`);
    } catch (error) {
      if ((error as { code?: string }).code === '55P03') {
        throw new MigrationError(
          `Timed out waiting for the migration lock (pg_advisory_lock(${PRISMA_MIGRATE_ADVISORY_LOCK})): another migration is running.`,
        );
      }
      throw error;
    }
    await client.query('SET lock_timeout = 0');
    try {
      await client.query(PRISMA_MIGRATIONS_TABLE_DDL);
      const status = computeStatus(await readAppliedRows(client), local);
      if (status.failed.length > 0) {
        throw new MigrationError(
          `Migration(s) ${status.failed.join(', ')} failed in this database (see _prisma_migrations.logs). ` +
            'Fix the database by hand, then mark it rolled back (UPDATE _prisma_migrations SET rolled_back_at = now() ' +
            "WHERE migration_name = '…' AND finished_at IS NULL) or applied, and deploy again (Prisma P3009).",
        );
      }
      if (status.modified.length > 0) {
        throw new MigrationError(
          `Checksum mismatch: applied migration(s) ${status.modified.join(', ')} were modified after they were applied ` +
            `(the sha256 of migration.sql no longer equals _prisma_migrations.checksum). Restore the original file(s) ` +
            'and put the change in a new migration.',
        );
      }
      for (const name of status.missingLocally) {
        log(`warning: migration ${name} is applied in the database but missing from ${migrationsDir}`);
      }
      const byName = new Map(local.map((m) => [m.name, m]));
      const applied: string[] = [];
      for (const name of status.pending) {
        const migration = byName.get(name) as MigrationFile;
        const id = randomUUID();
        await client.query(
          `INSERT INTO _prisma_migrations (id, checksum, started_at, migration_name, applied_steps_count)
           VALUES ($1, $2, now(), $3, 0)`,
          [id, migration.checksum, migration.name],
        );
        try {
          // One simple-protocol query: Postgres runs a multi-statement script as one implicit transaction.
          await client.query(migration.script);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          await client.query(`UPDATE _prisma_migrations SET logs = $2 WHERE id = $1`, [id, message]);
          throw new MigrationError(`Migration ${name} failed: ${message}`);
        }
        await client.query(
          `UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = applied_steps_count + 1 WHERE id = $1`,
          [id],
        );
        applied.push(name);
        log(`applied ${name}`);
      }
      return { applied };
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${PRISMA_MIGRATE_ADVISORY_LOCK})`).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
