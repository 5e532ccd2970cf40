// The committed migrations (prisma/migrations) applied without Prisma's native engine; the CLI
// (`npm run -s migrate -- dev|deploy|status|diff`) is main.ts.
export {
  migrateDeploy,
  migrationStatus,
  MigrationError,
  PRISMA_MIGRATE_ADVISORY_LOCK,
  PRISMA_MIGRATIONS_TABLE_DDL,
  type MigrateOptions,
  type MigrationStatus,
} from './deploy';
export { defaultMigrationsDir, readMigrations, readMigrationLock, sha256Hex, scriptMatchesChecksum, MIGRATION_LOCK_CONTENT, MIGRATION_LOCK_FILE, type MigrationFile } from './migrations-dir';
