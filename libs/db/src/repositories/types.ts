import type { Prisma, PrismaClient, TaskStatus } from '../generated/client';

/** The client or an open transaction: repositories accept either. */
export type Db = PrismaClient | Prisma.TransactionClient;

/** Statuses after which a task row never changes. */
export const TERMINAL: readonly TaskStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

/** Who is doing the work and on what, recorded with a claim. */
export interface Claimant {
  workerId: string;
}

/** A claim refused because the sweep already runs as many tasks as its `maxConcurrency`. */
export const THROTTLED = 'throttled' as const;

/**
 * Whether one more task of the sweep may start: locks the sweep row (so concurrent claims of one
 * sweep serialise) and counts its running runs and probe tasks, the claimed row excluded.
 */
export async function underConcurrencyCap(tx: Prisma.TransactionClient, sweepId: string, claimedId: string): Promise<boolean> {
  const [sweep] = await tx.$queryRaw<{ max_concurrency: number | null }[]>`SELECT max_concurrency FROM sweeps WHERE id = ${sweepId}::uuid FOR UPDATE`;
  if (!sweep || sweep.max_concurrency === null) return true;
  const [{ n }] = await tx.$queryRaw<{ n: bigint }[]>`
    SELECT (SELECT count(*) FROM runs WHERE sweep_id = ${sweepId}::uuid AND status = 'RUNNING' AND id <> ${claimedId}::uuid)
         + (SELECT count(*) FROM probe_tasks WHERE sweep_id = ${sweepId}::uuid AND status = 'RUNNING' AND id <> ${claimedId}::uuid) AS n`;
  return Number(n) < sweep.max_concurrency;
}
