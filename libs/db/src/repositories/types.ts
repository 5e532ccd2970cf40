import type { Prisma, PrismaClient } from '../generated/client';

/** The client or an open transaction: repositories accept either. */
export type Db = PrismaClient | Prisma.TransactionClient;

import type { TaskStatus } from '../generated/client';

/** Statuses after which a task row never changes. */
export const TERMINAL: readonly TaskStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

/** Who is doing the work and on what, recorded with a claim. */
export interface Claimant {
  workerId: string;
}
