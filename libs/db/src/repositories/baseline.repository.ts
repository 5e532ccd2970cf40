import type { Baseline, PrismaClient } from '../generated/client';
import type { Claimant } from './types';
import { appendEvent } from './event.repository';
import { sweepsWaitingOn } from './requeue';

export class BaselineRepository {
  constructor(private readonly prisma: PrismaClient) {}

  findById(id: string): Promise<Baseline | null> {
    return this.prisma.baseline.findUnique({ where: { id } });
  }

  async claim(id: string, by: Claimant & { backend: string; device?: string }): Promise<Baseline | null> {
    const { count } = await this.prisma.baseline.updateMany({
      where: { id, status: { in: ['QUEUED', 'RUNNING'] } },
      data: { status: 'RUNNING', attempts: { increment: 1 }, workerId: by.workerId, backend: by.backend, device: by.device ?? null, startedAt: new Date(), error: null },
    });
    return count === 1 ? this.findById(id) : null;
  }

  /** `device`: the device that computed it, when the result names one (else the claim's stays). */
  async complete(id: string, result: { accuracy: number; featureDim: number; device?: string }): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.baseline.updateMany({
        where: { id, status: 'RUNNING' },
        data: { status: 'SUCCEEDED', accuracy: result.accuracy, featureDim: result.featureDim, ...(result.device ? { device: result.device } : {}), finishedAt: new Date(), error: null },
      });
      if (count !== 1) return;
      const baseline = await tx.baseline.findUniqueOrThrow({ where: { id } });
      for (const sweepId of await sweepsWaitingOn(tx, id)) {
        await appendEvent(tx, sweepId, 'baseline.succeeded', { baselineId: id, kind: baseline.kind, dataset: baseline.dataset, accuracy: result.accuracy });
      }
    });
  }

  /**
   * A failure: FAILED when final, else back to QUEUED; either way an event to the sweeps waiting on it.
   * `handedBack`: a worker handed the row back because its own environment failed (not the job):
   * the attempt its claim counted is returned, so a misconfigured machine spends none of the job's.
   */
  async fail(id: string, error: string, final: boolean, options: { handedBack?: boolean } = {}): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.baseline.updateMany({
        where: { id, status: { in: ['QUEUED', 'RUNNING'] } },
        data: final ? { status: 'FAILED', error, finishedAt: new Date() } : { status: 'QUEUED', error, ...(options.handedBack ? { attempts: { decrement: 1 } } : {}) },
      });
      if (count !== 1) return;
      const baseline = await tx.baseline.findUniqueOrThrow({ where: { id } });
      for (const sweepId of await sweepsWaitingOn(tx, id)) {
        await appendEvent(tx, sweepId, final ? 'baseline.failed' : 'baseline.requeued', { baselineId: id, kind: baseline.kind, dataset: baseline.dataset, error });
      }
    });
  }

  /** Sweeps waiting on this baseline (their status is refreshed when it ends). */
  async sweepIds(id: string): Promise<string[]> {
    const rows = await this.prisma.sweepBaseline.findMany({ where: { baselineId: id }, select: { sweepId: true } });
    return rows.map((r) => r.sweepId);
  }

  /** Finished baselines of the given data sets at one label budget (null: all), best first. */
  forDatasets(datasets: string[], labels: number | null = null): Promise<Baseline[]> {
    return this.prisma.baseline.findMany({
      where: { dataset: { in: datasets }, status: 'SUCCEEDED', labels },
      orderBy: [{ dataset: 'asc' }, { accuracy: 'desc' }],
    });
  }
}
