import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client';
import { parseDatabaseUrl } from './database-url';

export interface CreatePrismaClientOptions {
  /** Pool size per client (pg's default is 10). */
  max?: number;
}

/**
 * A Prisma client on PostgreSQL through @prisma/adapter-pg. The adapter gets discrete
 * host/port/user/password/database fields parsed from the URL, never a `connectionString`.
 */
export function createPrismaClient(databaseUrl: string, options: CreatePrismaClientOptions = {}): PrismaClient {
  const fields = parseDatabaseUrl(databaseUrl);
  const adapter = new PrismaPg({ ...fields, ...(options.max !== undefined ? { max: options.max } : {}) });
  return new PrismaClient({ adapter });
}
