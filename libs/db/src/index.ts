export { createPrismaClient, type CreatePrismaClientOptions } from './client';
// DATABASE_URL handling: the discrete connection fields every pg client here is given.
export { DEFAULT_DATABASE_URL, formatDatabaseUrl, parseDatabaseUrl, quoteIdent, redactUrl, withDatabase, type PgConnectionFields } from './database-url';
// The generated client: PrismaClient, the Prisma namespace, model types and enums.
export * from './generated/client';
// Repositories: one per aggregate, transactions inside (added by the lead).
export * from './repositories';
