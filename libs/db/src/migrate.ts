// Applying the committed migrations (prisma/migrations) without Prisma's native engine.
export {
  migrateDeploy,
  migrationStatus,
  MigrationError,
  PRISMA_MIGRATE_ADVISORY_LOCK,
  PRISMA_MIGRATIONS_TABLE_DDL,
  type MigrateOptions,
  type MigrationStatus,
} from './migrations/deploy';
export {
  defaultMigrationsDir,
  readMigrations,
  readMigrationLock,
  sha256Hex,
  scriptMatchesChecksum,
  MIGRATION_LOCK_CONTENT,
  MIGRATION_LOCK_FILE,
  type MigrationFile,
} from './migrations/migrations-dir';
export {
  DEFAULT_DATABASE_URL,
  parseDatabaseUrl,
  formatDatabaseUrl,
  withDatabase,
  quoteIdent,
  redactUrl,
  type PgConnectionFields,
} from './migrations/database-url';
