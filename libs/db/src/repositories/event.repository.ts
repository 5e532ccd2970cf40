import type { Prisma, PrismaClient } from '../generated/client';
import type { Db } from './types';

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

/** Appends one event (inside the caller's transaction when given one). */
export async function appendEvent(db: Db, sweepId: string, type: SweepEventType, data: Record<string, unknown>): Promise<void> {
  await db.sweepEvent.create({ data: { sweepId, type, data: data as Prisma.InputJsonValue } });
}

export class EventRepository {
  constructor(private readonly prisma: PrismaClient) {}

  append(sweepId: string, type: SweepEventType, data: Record<string, unknown>): Promise<void> {
    return appendEvent(this.prisma, sweepId, type, data);
  }

  /** Events of a sweep after `afterId`, oldest first. */
  after(sweepId: string, afterId: bigint, limit = 500): Promise<SweepEventRow[]> {
    return this.prisma.sweepEvent.findMany({ where: { sweepId, id: { gt: afterId } }, orderBy: { id: 'asc' }, take: limit });
  }
}
