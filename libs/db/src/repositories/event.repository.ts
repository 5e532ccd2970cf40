import type { Prisma, PrismaClient } from '../generated/client';

export type SweepEventType =
  | 'sweep.submitted'
  | 'sweep.status'
  | 'run.started'
  | 'run.checkpoint'
  | 'run.succeeded'
  | 'run.requeued'
  | 'run.failed'
  | 'probe.started'
  | 'probe.succeeded'
  | 'probe.requeued'
  | 'probe.failed'
  /** An adaptive noise search finished a round: the levels it probes next, or done. */
  | 'probe.search'
  /** A run's linear probes are done: its best cell is fine-tuned next (spec probe.finetune.cells: best). */
  | 'probe.finetune'
  /** Probing during pretraining measured a checkpoint. */
  | 'run.progress-probe'
  /** Probing during pretraining found a plateau: the run stopped early. */
  | 'run.stopped-early'
  | 'baseline.succeeded'
  /** A shared baseline's events go to the sweeps still waiting on it (not to ended ones). */
  | 'baseline.requeued'
  | 'baseline.failed';

export interface SweepEventRow {
  id: bigint;
  sweepId: string;
  type: string;
  data: Prisma.JsonValue;
  createdAt: Date;
}

/**
 * Appends one event inside the caller's transaction.
 *
 * Event ids come from a sequence, taken at insert and visible at commit: without care, a
 * transaction that took id 10 could commit after one that took id 11, and a live stream that had
 * already sent 11 (it reads `id > last`) would never send 10. So each insert first takes a
 * per-sweep advisory lock held until its transaction ends: a sweep's events are written one
 * transaction at a time, and commit in id order. (Callers append after their row updates, so the
 * lock is the last one their transaction takes.)
 */
export async function appendEvent(tx: Prisma.TransactionClient, sweepId: string, type: SweepEventType, data: Record<string, unknown>): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`sweep_events:${sweepId}`}, 0))`;
  await tx.sweepEvent.create({ data: { sweepId, type, data: data as Prisma.InputJsonValue } });
}

/** Appends one event in a transaction of its own (see appendEvent). */
export function appendEventAlone(prisma: PrismaClient, sweepId: string, type: SweepEventType, data: Record<string, unknown>): Promise<void> {
  return prisma.$transaction((tx) => appendEvent(tx, sweepId, type, data));
}

export class EventRepository {
  constructor(private readonly prisma: PrismaClient) {}

  append(sweepId: string, type: SweepEventType, data: Record<string, unknown>): Promise<void> {
    return appendEventAlone(this.prisma, sweepId, type, data);
  }

  /** Events of a sweep after `afterId`, oldest first. */
  after(sweepId: string, afterId: bigint, limit = 500): Promise<SweepEventRow[]> {
    return this.prisma.sweepEvent.findMany({ where: { sweepId, id: { gt: afterId } }, orderBy: { id: 'asc' }, take: limit });
  }
}
