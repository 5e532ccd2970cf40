import type { Prisma, PrismaClient } from '../generated/client';
import { appendEvent } from './event.repository';
import { runCurveHead, type RunCurveHead } from './run-curve';

/** One probed checkpoint during pretraining, as the compute task reports it. */
export interface ProgressPointRecord {
  step: number;
  cells: { layer: string; noiseLevel: number; accuracy: number; featureDim: number }[];
}

/** How and where the point was measured, stored with each of its cells. */
export interface ProgressProbeContext {
  /** The small grid's probe protocol and its canonical key (contracts' protocolKey). */
  protocol: Prisma.InputJsonValue;
  protocolKey: string;
  backend: string;
  /** The device that computed it (the run's: the GPU adapter on webgpu, else the worker's device label). */
  device?: string;
  workerId: string;
}

/** Accuracy against step of one run: each probed step's cells and their best. */
export interface RunProgress extends RunCurveHead {
  /** Probe every N steps (null: the run does not probe during pretraining). */
  every: number | null;
  /** The step at which a plateau stopped the run; null: not stopped early. */
  stoppedEarlyAt: number | null;
  points: {
    step: number;
    accuracy: number;
    /** The device that computed the point (its cells are written together); null on points recorded before devices were. */
    device: string | null;
    cells: { layer: string; noiseLevel: number; accuracy: number; featureDim: number }[];
  }[];
}

export class ProgressProbeRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Stores one probed checkpoint's cells in one transaction, upserted on (run, step, layer, noise
   * level, protocol): a retried or resumed job that reports the point again converges to the same
   * rows. The `run.progress-probe` event is appended only when the step is new for the run.
   */
  async record(runId: string, point: ProgressPointRecord, context: ProgressProbeContext): Promise<{ isNew: boolean }> {
    return this.prisma.$transaction(async (tx) => {
      // Reports of one run serialise on its row, so exactly one of two concurrent reports is new.
      const [run] = await tx.$queryRaw<{ sweep_id: string; key: string }[]>`SELECT sweep_id, key FROM runs WHERE id = ${runId}::uuid FOR UPDATE`;
      if (!run) return { isNew: false };
      const existing = await tx.progressProbe.count({ where: { runId, step: point.step, protocolKey: context.protocolKey } });
      for (const c of point.cells) {
        const values = { accuracy: c.accuracy, featureDim: c.featureDim, protocol: context.protocol, backend: context.backend, device: context.device ?? null, workerId: context.workerId };
        await tx.progressProbe.upsert({
          where: { runId_step_layer_noiseLevel_protocolKey: { runId, step: point.step, layer: c.layer, noiseLevel: c.noiseLevel, protocolKey: context.protocolKey } },
          create: { runId, sweepId: run.sweep_id, step: point.step, layer: c.layer, noiseLevel: c.noiseLevel, protocolKey: context.protocolKey, ...values },
          update: values,
        });
      }
      const isNew = existing === 0 && point.cells.length > 0;
      if (isNew) {
        const best = point.cells.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
        await appendEvent(tx, run.sweep_id, 'run.progress-probe', { runId, run: run.key, step: point.step, accuracy: best.accuracy, layer: best.layer, noiseLevel: best.noiseLevel });
      }
      return { isNew };
    });
  }

  /** Accuracy against step of every trained run of a sweep, runs by key, points by step. */
  async ofSweep(sweepId: string): Promise<RunProgress[]> {
    const [runs, rows] = await Promise.all([
      this.prisma.run.findMany({ where: { sweepId, untrained: false }, orderBy: { key: 'asc' } }),
      this.prisma.progressProbe.findMany({ where: { sweepId }, orderBy: [{ step: 'asc' }, { noiseLevel: 'asc' }, { layer: 'asc' }] }),
    ]);
    return runs.map((r) => {
      const points = new Map<number, RunProgress['points'][number]>();
      for (const row of rows) {
        if (row.runId !== r.id) continue;
        const point = points.get(row.step) ?? { step: row.step, accuracy: 0, device: row.device, cells: [] };
        point.cells.push({ layer: row.layer, noiseLevel: row.noiseLevel, accuracy: row.accuracy, featureDim: row.featureDim });
        point.accuracy = Math.max(point.accuracy, row.accuracy);
        points.set(row.step, point);
      }
      const every = (r.hyper as { progressProbe?: { every?: number } } | null)?.progressProbe?.every ?? null;
      return {
        ...runCurveHead(r),
        every,
        stoppedEarlyAt: r.stoppedEarlyAt,
        points: [...points.values()],
      };
    });
  }
}
