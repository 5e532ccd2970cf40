export { createPrismaClient, type CreatePrismaClientOptions } from './client';
export * from './migrate';
// The generated client: PrismaClient, the Prisma namespace, model types and enums.
export * from './generated/client';
// Repositories: one per aggregate, transactions inside (added by the lead).
export * from './repositories';
