import { Prisma, type PrismaClient } from '../generated/client';
import { runCurveHead, type RunCurveHead } from './run-curve';

/** One point of a run's training-loss curve: the mean loss over the window of steps ending at `step`. */
export interface TrainLossRecord {
  step: number;
  loss: number;
}

/** The training-loss curve of one run. */
export interface RunLossCurve extends RunCurveHead {
  points: TrainLossRecord[];
}

export class TrainLossRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Stores points of a run's loss curve, upserted on (run, step) in one statement: a retried or
   * resumed job that reports a step again converges to one row (the newest value). Non-finite
   * losses are not stored (the job fails on them anyway). Returns the rows written.
   */
  async record(runId: string, points: readonly TrainLossRecord[]): Promise<number> {
    const finite = points.filter((p) => Number.isInteger(p.step) && p.step >= 0 && Number.isFinite(p.loss));
    if (finite.length === 0) return 0;
    const values = finite.map((p) => Prisma.sql`(${p.step}::int, ${p.loss}::float8)`);
    return this.prisma.$executeRaw`
      INSERT INTO train_losses (run_id, sweep_id, step, loss, updated_at)
      SELECT r.id, r.sweep_id, v.step, v.loss, now()
      FROM runs r, (VALUES ${Prisma.join(values)}) AS v(step, loss)
      WHERE r.id = ${runId}::uuid
      ON CONFLICT (run_id, step) DO UPDATE SET loss = EXCLUDED.loss, updated_at = now()`;
  }

  /** The loss curve of every trained run of a sweep, runs by key, points by step. */
  async ofSweep(sweepId: string): Promise<RunLossCurve[]> {
    const [runs, rows] = await Promise.all([
      this.prisma.run.findMany({ where: { sweepId, untrained: false }, orderBy: { key: 'asc' } }),
      this.prisma.trainLoss.findMany({ where: { sweepId }, orderBy: [{ runId: 'asc' }, { step: 'asc' }], select: { runId: true, step: true, loss: true } }),
    ]);
    const byRun = new Map<string, TrainLossRecord[]>();
    for (const row of rows) {
      const points = byRun.get(row.runId) ?? [];
      points.push({ step: row.step, loss: row.loss });
      byRun.set(row.runId, points);
    }
    return runs.map((r) => ({ ...runCurveHead(r), points: byRun.get(r.id) ?? [] }));
  }
}
