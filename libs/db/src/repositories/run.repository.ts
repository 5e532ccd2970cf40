import type { Checkpoint, PrismaClient, Run } from '../generated/client';
import { THROTTLED, underConcurrencyCap, type Claimant } from './types';
import { appendEvent, appendEventAlone } from './event.repository';
import { lockModelSummaries, refreshSummaries } from './summary';

export interface CheckpointRecord {
  step: number;
  /** Relative to the artifact root. */
  path: string;
  sha256: string;
  loss?: number;
}

export class RunRepository {
  constructor(private readonly prisma: PrismaClient) {}

  findById(id: string): Promise<Run | null> {
    return this.prisma.run.findUnique({ where: { id } });
  }

  /**
   * Claims a run for a worker: QUEUED, or RUNNING left behind by a lost worker, becomes RUNNING.
   * Returns null when the run is finished or cancelled: the job then has nothing to do.
   */
  async claim(id: string, by: Claimant & { backend: string; device?: string }): Promise<Run | null | typeof THROTTLED> {
    const claimed = await this.prisma.$transaction(async (tx) => {
      const row = await tx.run.findUnique({ where: { id }, select: { sweepId: true } });
      if (!row) return 0;
      if (!(await underConcurrencyCap(tx, row.sweepId, id))) return THROTTLED;
      const { count } = await tx.run.updateMany({
        // A paused sweep starts nothing new.
        where: { id, status: { in: ['QUEUED', 'RUNNING'] }, sweep: { pausedAt: null } },
        data: {
          status: 'RUNNING',
          attempts: { increment: 1 },
          workerId: by.workerId,
          backend: by.backend,
          device: by.device ?? null,
          startedAt: new Date(),
          error: null,
        },
      });
      return count;
    });
    if (claimed === THROTTLED) return THROTTLED;
    if (claimed !== 1) return null;
    const run = await this.findById(id);
    if (run) await appendEventAlone(this.prisma, run.sweepId, 'run.started', { runId: id, run: run.key, attempt: run.attempts, workerId: by.workerId, backend: by.backend });
    return run;
  }

  async progress(id: string, stepsDone: number, loss?: number): Promise<void> {
    await this.prisma.run.updateMany({
      where: { id, status: 'RUNNING' },
      data: { stepsDone, ...(loss !== undefined && Number.isFinite(loss) ? { lastLoss: loss } : {}) },
    });
  }

  /** Records the model's parameter count; the model's summary cells (which show it) follow in the same transaction. */
  async setParameters(id: string, parameters: number): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const run = await tx.run.update({ where: { id }, data: { parameters }, select: { sweepId: true, modelName: true } });
      await lockModelSummaries(tx, run.sweepId, run.modelName);
      await refreshSummaries(tx, { sweepId: run.sweepId, modelName: run.modelName });
    });
  }

  /** Records a checkpoint; idempotent on (run, step). */
  async recordCheckpoint(runId: string, c: CheckpointRecord, final = false): Promise<Checkpoint> {
    return this.prisma.$transaction(async (tx) => {
      const checkpoint = await tx.checkpoint.upsert({
        where: { runId_step: { runId, step: c.step } },
        create: { runId, step: c.step, path: c.path, sha256: c.sha256, loss: c.loss ?? null, final },
        update: { path: c.path, sha256: c.sha256, loss: c.loss ?? null, ...(final ? { final } : {}) },
      });
      await tx.run.updateMany({
        where: { id: runId, stepsDone: { lt: c.step } },
        data: { stepsDone: c.step, ...(c.loss !== undefined ? { lastLoss: c.loss } : {}) },
      });
      const run = await tx.run.findUniqueOrThrow({ where: { id: runId }, select: { sweepId: true, key: true, steps: true } });
      await appendEvent(tx, run.sweepId, 'run.checkpoint', { runId, run: run.key, step: c.step, steps: run.steps, loss: c.loss ?? null });
      return checkpoint;
    });
  }

  /**
   * Marks the run SUCCEEDED with its final checkpoint, in one transaction. Returns false when the
   * run was cancelled meanwhile (its result is kept, but no follow-up work starts). With
   * `stoppedEarly`, probing during pretraining found a plateau at the final checkpoint's step:
   * recorded as `stoppedEarlyAt` and a `run.stopped-early` event.
   */
  /** `options.device`: the device that computed the run, when the result names one (else the claim's stays). */
  /** `options.sourceSha256`: an imported run's source file as the import hashed it (its provenance). */
  async complete(id: string, final: CheckpointRecord, options: { stoppedEarly?: boolean; device?: string; sourceSha256?: string } = {}): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      await tx.checkpoint.upsert({
        where: { runId_step: { runId: id, step: final.step } },
        create: { runId: id, step: final.step, path: final.path, sha256: final.sha256, loss: final.loss ?? null, final: true },
        update: { path: final.path, sha256: final.sha256, final: true },
      });
      const { count } = await tx.run.updateMany({
        where: { id, status: 'RUNNING' },
        data: { status: 'SUCCEEDED', stepsDone: final.step, finishedAt: new Date(), error: null, stoppedEarlyAt: options.stoppedEarly ? final.step : null, ...(options.device ? { device: options.device } : {}), ...(options.sourceSha256 ? { sourceSha256: options.sourceSha256 } : {}) },
      });
      if (count === 1) {
        const run = await tx.run.findUniqueOrThrow({ where: { id }, select: { sweepId: true, key: true, steps: true } });
        if (options.stoppedEarly) await appendEvent(tx, run.sweepId, 'run.stopped-early', { runId: id, run: run.key, step: final.step, steps: run.steps });
        await appendEvent(tx, run.sweepId, 'run.succeeded', { runId: id, run: run.key, step: final.step, loss: final.loss ?? null });
      }
      return count === 1;
    });
  }

  /**
   * A failure: FAILED when final (no retry left or not retryable), else back to QUEUED.
   * `handedBack`: a worker handed the row back because its own environment failed (not the job):
   * the attempt its claim counted is returned, so a misconfigured machine spends none of the job's.
   */
  async fail(id: string, error: string, final: boolean, options: { handedBack?: boolean } = {}): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.run.updateMany({
        where: { id, status: { in: ['QUEUED', 'RUNNING'] } },
        data: final ? { status: 'FAILED', error, finishedAt: new Date() } : { status: 'QUEUED', error, ...(options.handedBack ? { attempts: { decrement: 1 } } : {}) },
      });
      // A run that was cancelled (or had ended) meanwhile changes nothing and tells nothing.
      if (count !== 1) return;
      const run = await tx.run.findUniqueOrThrow({ where: { id }, select: { sweepId: true, key: true } });
      if (final) {
        await tx.probeTask.updateMany({
          where: { runId: id, status: { in: ['QUEUED', 'RUNNING'] } },
          data: { status: 'FAILED', error: 'pretraining run failed', finishedAt: new Date() },
        });
      }
      // The event last: it takes the sweep's event lock (see appendEvent).
      await appendEvent(tx, run.sweepId, final ? 'run.failed' : 'run.requeued', { runId: id, run: run.key, error });
    });
  }

  finalCheckpoint(runId: string): Promise<Checkpoint | null> {
    return this.prisma.checkpoint.findFirst({ where: { runId, final: true }, orderBy: { step: 'desc' } });
  }

  /** Status only: polled by a running job to notice a cancel. */
  async status(id: string): Promise<string | null> {
    const row = await this.prisma.run.findUnique({ where: { id }, select: { status: true } });
    return row?.status ?? null;
  }
}
