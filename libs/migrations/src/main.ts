/**
 * Offline `prisma migrate`: npm run -s migrate -- <command>
 * (node -r @swc-node/register libs/migrations/src/main.ts <command>)
 *
 *   dev --name NAME [--create-only]  applies pending migrations, diffs the migration history (replayed
 *                                    in a shadow database of our own) against prisma/schema.prisma,
 *                                    writes prisma/migrations/<yyyymmddhhmmss>_NAME/migration.sql and
 *                                    applies it; refuses when the schema has no change
 *   deploy                           creates the database if missing and applies pending migrations
 *   status                           applied / pending / failed / modified migrations (exit 1 unless up to date)
 *   diff [--from-db | --drift]       prints SQL without applying: migrations -> schema (default),
 *        [--exit-code]               live database -> schema (--from-db), migrations -> live database (--drift);
 *                                    --exit-code: exit 2 when there is a difference (a CI check)
 *
 * DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/ddae). The migrations and the
 * `_prisma_migrations` rows are Prisma's own format: the real `prisma migrate deploy` can take over.
 */
import { rawEnv } from '@ddae/config';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DATABASE_URL, formatDatabaseUrl, parseDatabaseUrl, redactUrl, withDatabase } from '@ddae/db';
import { MigrationError, migrateDeploy, migrationStatus } from './deploy';
import { MIGRATION_LOCK_CONTENT, MIGRATION_LOCK_FILE, readMigrationLock, readMigrations } from './migrations-dir';
import { openSchemaEngine, schemaEngineVersion } from './schema-engine';

const ROOT = path.resolve(__dirname, '../../..');
const SCHEMA_PATH = path.join(ROOT, 'prisma/schema.prisma');
const MIGRATIONS_DIR = rawEnv()['DDAE_MIGRATIONS_DIR'] ? path.resolve(rawEnv()['DDAE_MIGRATIONS_DIR'] ?? '') : path.join(ROOT, 'prisma/migrations');

const USAGE = 'usage: npm run -s migrate -- <dev --name NAME [--create-only] | deploy | status | diff [--from-db | --drift] [--exit-code]> [--verbose]';

function timestamp(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}` +
    `${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`
  );
}

/** `<yyyymmddhhmmss>_<name>`, later than every existing migration. */
function nextMigrationName(name: string, existing: string[]): string {
  const slug = name.trim().replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 200);
  if (!slug) throw new MigrationError(`Invalid migration name ${JSON.stringify(name)}`);
  let time = Date.now();
  const last = existing.map((m) => m.slice(0, 14)).sort().pop();
  while (last !== undefined && timestamp(new Date(time)) <= last) time += 1000;
  return `${timestamp(new Date(time))}_${slug}`;
}

async function withEngine<T>(databaseUrl: string, engineUrl: string, verbose: boolean, fn: (session: Awaited<ReturnType<typeof openSchemaEngine>>) => Promise<T>): Promise<T> {
  const session = await openSchemaEngine({
    database: parseDatabaseUrl(engineUrl),
    shadowPrefix: parseDatabaseUrl(databaseUrl).database,
    schemaPath: SCHEMA_PATH,
    migrationsDir: MIGRATIONS_DIR,
    verbose,
  });
  // Ctrl-C while the engine works: still drop our shadow database.
  const onSignal = () => void session.close().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(session);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await session.close();
  }
}

async function dev(databaseUrl: string, name: string | undefined, createOnly: boolean, verbose: boolean): Promise<number> {
  if (!name) {
    console.error('dev needs --name NAME');
    return 2;
  }
  // Bring the database up to the committed history first (creates it if missing).
  const pending = await migrateDeploy(databaseUrl, { migrationsDir: MIGRATIONS_DIR, log: (line) => console.log(line) });
  if (pending.applied.length) console.log(`Applied ${pending.applied.length} pending migration(s).`);

  const script = await withEngine(databaseUrl, databaseUrl, verbose, async (session) => {
    const drift = await session.diffScript(session.migrationsTarget(), session.databaseTarget());
    if (drift.trim()) {
      console.warn('warning: the database differs from the migration history (drift); `diff --drift` shows how.');
    }
    return session.diffScript(session.migrationsTarget(), session.schemaTarget());
  });
  if (!script.trim()) {
    console.error('No changes: prisma/schema.prisma already matches the migrations. Nothing to create.');
    return 1;
  }
  const existing = readMigrations(MIGRATIONS_DIR).map((m) => m.name);
  const dirName = nextMigrationName(name, existing);
  mkdirSync(path.join(MIGRATIONS_DIR, dirName), { recursive: true });
  writeFileSync(path.join(MIGRATIONS_DIR, dirName, 'migration.sql'), script, 'utf8');
  if (readMigrationLock(MIGRATIONS_DIR) !== MIGRATION_LOCK_CONTENT) {
    writeFileSync(path.join(MIGRATIONS_DIR, MIGRATION_LOCK_FILE), MIGRATION_LOCK_CONTENT, 'utf8');
  }
  console.log(`Created prisma/migrations/${dirName}/migration.sql`);
  if (createOnly) return 0;
  const result = await migrateDeploy(databaseUrl, { migrationsDir: MIGRATIONS_DIR, log: (line) => console.log(line) });
  console.log(`Database ${parseDatabaseUrl(databaseUrl).database} is up to date (${result.applied.length} applied).`);
  return 0;
}

async function deploy(databaseUrl: string): Promise<number> {
  const started = process.hrtime.bigint();
  const { applied } = await migrateDeploy(databaseUrl, { migrationsDir: MIGRATIONS_DIR, log: (line) => console.log(line) });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const total = readMigrations(MIGRATIONS_DIR).length;
  console.log(
    applied.length
      ? `Applied ${applied.length} migration(s) to ${parseDatabaseUrl(databaseUrl).database} in ${ms.toFixed(0)} ms.`
      : `No pending migrations (${total} applied) in ${ms.toFixed(0)} ms.`,
  );
  return 0;
}

async function status(databaseUrl: string): Promise<number> {
  const s = await migrationStatus(databaseUrl, { migrationsDir: MIGRATIONS_DIR });
  const db = parseDatabaseUrl(databaseUrl).database;
  console.log(`${readMigrations(MIGRATIONS_DIR).length} migration(s) in prisma/migrations; database ${db}${s.initialized ? '' : ' (no _prisma_migrations table)'}`);
  for (const name of s.applied) console.log(`  applied   ${name}${s.modified.includes(name) ? '  (MODIFIED since applied: checksum mismatch)' : ''}`);
  for (const name of s.failed) console.log(`  FAILED    ${name}`);
  for (const name of s.pending) console.log(`  pending   ${name}`);
  for (const name of s.missingLocally) console.log(`  applied, missing locally  ${name}`);
  const upToDate = s.pending.length === 0 && s.failed.length === 0 && s.modified.length === 0;
  console.log(upToDate ? 'Database schema is up to date.' : 'Database schema is NOT up to date.');
  return upToDate ? 0 : 1;
}

async function diff(databaseUrl: string, fromDb: boolean, drift: boolean, exitCode: boolean, verbose: boolean): Promise<number> {
  const needsDb = fromDb || drift;
  // Migrations -> schema needs no main database: the engine then connects to the maintenance database.
  const engineUrl = needsDb ? databaseUrl : formatDatabaseUrl(withDatabase(parseDatabaseUrl(databaseUrl), 'postgres'));
  const script = await withEngine(databaseUrl, engineUrl, verbose, (s) =>
    fromDb
      ? s.diffScript(s.databaseTarget(), s.schemaTarget())
      : drift
        ? s.diffScript(s.migrationsTarget(), s.databaseTarget())
        : s.diffScript(s.migrationsTarget(), s.schemaTarget()),
  );
  process.stdout.write(script.trim() ? script : '-- No difference.\n');
  return exitCode && script.trim() ? 2 : 0;
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string', short: 'n' },
      'create-only': { type: 'boolean', default: false },
      'from-db': { type: 'boolean', default: false },
      drift: { type: 'boolean', default: false },
      'exit-code': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const databaseUrl = rawEnv()['DATABASE_URL'] || DEFAULT_DATABASE_URL;
  if (values.verbose) console.error(`database ${redactUrl(databaseUrl)}; schema engine ${schemaEngineVersion()}`);
  switch (command) {
    case 'dev':
      return dev(databaseUrl, values.name, values['create-only'] ?? false, values.verbose ?? false);
    case 'deploy':
      return deploy(databaseUrl);
    case 'status':
      return status(databaseUrl);
    case 'diff':
      return diff(databaseUrl, values['from-db'] ?? false, values.drift ?? false, values['exit-code'] ?? false, values.verbose ?? false);
    default:
      console.error(`unknown command ${command}\n${USAGE}`);
      return 2;
  }
}

if (!existsSync(SCHEMA_PATH)) {
  console.error(`no schema at ${SCHEMA_PATH}`);
  process.exit(2);
}
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof MigrationError ? `error: ${error.message}` : error);
    process.exit(1);
  },
);
