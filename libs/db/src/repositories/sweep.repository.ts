import { Prisma, type PrismaClient, type Sweep, type TaskStatus } from '../generated/client';
import { appendEvent } from './event.repository';

export interface NewRun {
  key: string;
  modelName: string;
  untrained: boolean;
  method: string;
  unet: Prisma.InputJsonValue;
  dataset: string;
  seed: number;
  hyper: Prisma.InputJsonValue;
  steps: number;
}

export interface NewProbeTask {
  runKey: string;
  noiseLevel: number;
  layers: string[];
  protocol: Prisma.InputJsonValue;
  protocolKey: string;
}

export interface NewBaseline {
  dataset: string;
  kind: string;
  protocol: Prisma.InputJsonValue;
  protocolKey: string;
}

export interface NewSweep {
  name: string;
  priority: number;
  maxConcurrency?: number;
  dataset: string;
  spec: Prisma.InputJsonValue;
  specHash: string;
  idempotencyKey?: string;
  runs: NewRun[];
  probeTasks: NewProbeTask[];
  baselines: NewBaseline[];
}

export interface CreatedSweep {
  sweep: Sweep;
  /** false when the idempotency key already named a sweep: nothing was written. */
  created: boolean;
  /** Ids of the new runs, in the order of `NewSweep.runs`. */
  runIds: string[];
  /** Baselines that still need computing (not already done for this data set and protocol). */
  pendingBaselineIds: string[];
}

export type StatusCounts = Record<TaskStatus, number>;

export interface SweepProgress {
  runs: StatusCounts & { stepsDone: number; steps: number };
  probeTasks: StatusCounts;
  baselines: StatusCounts;
}

const emptyCounts = (): StatusCounts => ({ QUEUED: 0, RUNNING: 0, SUCCEEDED: 0, FAILED: 0, CANCELLED: 0 });

export class SweepRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Stores a planned sweep with its runs, probe tasks and baselines in ONE transaction.
   * A repeated idempotency key returns the stored sweep and writes nothing (also under a race:
   * the unique key decides, the loser reads the winner's row).
   */
  async create(input: NewSweep): Promise<CreatedSweep> {
    if (input.idempotencyKey) {
      const existing = await this.prisma.sweep.findUnique({ where: { idempotencyKey: input.idempotencyKey } });
      if (existing) return { sweep: existing, created: false, runIds: [], pendingBaselineIds: [] };
    }
    try {
      return await this.prisma.$transaction(async (tx) => {
        const sweep = await tx.sweep.create({
          data: {
            name: input.name,
            priority: input.priority,
            maxConcurrency: input.maxConcurrency ?? null,
            dataset: input.dataset,
            spec: input.spec,
            specHash: input.specHash,
            idempotencyKey: input.idempotencyKey ?? null,
          },
        });
        const runIds = new Map<string, string>();
        for (const run of input.runs) {
          const row = await tx.run.create({ data: { ...run, sweepId: sweep.id } });
          runIds.set(run.key, row.id);
        }
        if (input.probeTasks.length > 0) {
          await tx.probeTask.createMany({
            data: input.probeTasks.map((t) => ({
              sweepId: sweep.id,
              runId: runIds.get(t.runKey) as string,
              noiseLevel: t.noiseLevel,
              layers: t.layers,
              protocol: t.protocol,
              protocolKey: t.protocolKey,
            })),
          });
        }
        const pendingBaselineIds: string[] = [];
        for (const b of input.baselines) {
          const baseline = await tx.baseline.upsert({
            where: { dataset_kind_protocolKey: { dataset: b.dataset, kind: b.kind, protocolKey: b.protocolKey } },
            create: { dataset: b.dataset, kind: b.kind, protocol: b.protocol, protocolKey: b.protocolKey },
            update: {},
          });
          await tx.sweepBaseline.create({ data: { sweepId: sweep.id, baselineId: baseline.id } });
          if (baseline.status !== 'SUCCEEDED') {
            if (baseline.status === 'FAILED' || baseline.status === 'CANCELLED') {
              await tx.baseline.update({ where: { id: baseline.id }, data: { status: 'QUEUED', error: null } });
            }
            pendingBaselineIds.push(baseline.id);
          }
        }
        await appendEvent(tx, sweep.id, 'sweep.submitted', { name: sweep.name, runs: input.runs.length, probeTasks: input.probeTasks.length, baselines: input.baselines.length });
        return { sweep, created: true, runIds: [...runIds.values()], pendingBaselineIds };
        // One row per run and probe task: a big sweep, or a loaded machine (5.9 s measured for a
        // tiny one on a 2-core machine at load 30), outlasts Prisma's default 5 s.
      }, { timeout: 60_000, maxWait: 10_000 });
    } catch (error) {
      if (input.idempotencyKey && error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
        const existing = await this.prisma.sweep.findUnique({ where: { idempotencyKey: input.idempotencyKey } });
        if (existing) return { sweep: existing, created: false, runIds: [], pendingBaselineIds: [] };
      }
      throw error;
    }
  }

  findById(id: string): Promise<Sweep | null> {
    return this.prisma.sweep.findUnique({ where: { id } });
  }

  /**
   * Sweeps whose id starts with `prefix` (8 to 32 hex digits, hyphens anywhere or nowhere, any
   * case), at most `limit`, newest first. One range scan of the primary key: a UUID's order is its
   * hex digits' order, so the ids with a prefix lie between the prefix padded with 0s and with fs.
   */
  async findByIdPrefix(prefix: string, limit = 10): Promise<Pick<Sweep, 'id' | 'name' | 'status' | 'dataset' | 'createdAt'>[]> {
    const hex = prefix.replace(/-/g, '').toLowerCase();
    if (!/^[0-9a-f]{8,32}$/.test(hex)) throw new RangeError(`a sweep id prefix is 8 to 32 hex digits, got "${prefix}"`);
    const uuid = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    return this.prisma.sweep.findMany({
      where: { id: { gte: uuid(hex.padEnd(32, '0')), lte: uuid(hex.padEnd(32, 'f')) } },
      select: { id: true, name: true, status: true, dataset: true, createdAt: true },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: limit,
    });
  }

  /** Newest first, keyset-paginated by (createdAt, id). */
  list(options: { limit: number; status?: string; before?: Date }): Promise<Sweep[]> {
    return this.prisma.sweep.findMany({
      where: {
        ...(options.status ? { status: options.status as TaskStatus } : {}),
        ...(options.before ? { createdAt: { lt: options.before } } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: options.limit,
    });
  }

  async progress(sweepId: string): Promise<SweepProgress> {
    const [runs, steps, probes, baselines] = await Promise.all([
      this.prisma.run.groupBy({ by: ['status'], where: { sweepId }, _count: { _all: true } }),
      this.prisma.run.aggregate({ where: { sweepId }, _sum: { stepsDone: true, steps: true } }),
      this.prisma.probeTask.groupBy({ by: ['status'], where: { sweepId }, _count: { _all: true } }),
      this.prisma.$queryRaw<{ status: TaskStatus; n: bigint }[]>`
        SELECT b.status::text AS status, count(*) AS n FROM sweep_baselines sb
        JOIN baselines b ON b.id = sb.baseline_id WHERE sb.sweep_id = ${sweepId}::uuid GROUP BY b.status`,
    ]);
    const progress: SweepProgress = {
      runs: { ...emptyCounts(), stepsDone: steps._sum.stepsDone ?? 0, steps: steps._sum.steps ?? 0 },
      probeTasks: emptyCounts(),
      baselines: emptyCounts(),
    };
    for (const r of runs) progress.runs[r.status] = r._count._all;
    for (const p of probes) progress.probeTasks[p.status] = p._count._all;
    for (const b of baselines) progress.baselines[b.status] = Number(b.n);
    return progress;
  }

  /** A task of these sweeps started: QUEUED sweeps become RUNNING (other states are left alone). */
  async markStarted(sweepIds: string[]): Promise<void> {
    for (const id of sweepIds) {
      await this.prisma.$transaction(async (tx) => {
        const { count } = await tx.sweep.updateMany({ where: { id, status: 'QUEUED' }, data: { status: 'RUNNING' } });
        if (count === 1) await appendEvent(tx, id, 'sweep.status', { status: 'RUNNING' });
      });
    }
  }

  /**
   * Derives the sweep's status from its rows and stores it: the one place that decides it.
   * CANCELLED is sticky; otherwise done when every run, probe task and baseline is terminal.
   */
  async refreshStatus(sweepId: string): Promise<Sweep | null> {
    const sweep = await this.findById(sweepId);
    if (!sweep || sweep.status === 'CANCELLED') return sweep;
    const p = await this.progress(sweepId);
    const all = [p.runs, p.probeTasks, p.baselines];
    const active = all.reduce((n, c) => n + c.QUEUED + c.RUNNING, 0);
    const started = all.reduce((n, c) => n + c.RUNNING + c.SUCCEEDED + c.FAILED, 0);
    const failed = all.reduce((n, c) => n + c.FAILED, 0);
    const status = active > 0 ? (started > 0 ? 'RUNNING' : 'QUEUED') : failed > 0 ? 'FAILED' : 'SUCCEEDED';
    if (status === sweep.status) return sweep;
    return this.prisma.$transaction(async (tx) => {
      const updated = await tx.sweep.update({ where: { id: sweepId }, data: { status, finishedAt: active === 0 ? new Date() : null } });
      await appendEvent(tx, sweepId, 'sweep.status', { status, progress: p });
      return updated;
    });
  }

  /**
   * Puts exactly the FAILED runs, probe tasks and baselines of a sweep back to QUEUED, in one
   * transaction (probe tasks that failed only because their run failed come back with it).
   * Returns null for an unknown sweep, and the ids to enqueue otherwise.
   */
  async retryFailed(sweepId: string): Promise<{ sweep: Sweep; runIds: string[]; probeTaskIds: string[]; baselineIds: string[] } | null> {
    return this.prisma.$transaction(async (tx) => {
      const sweep = await tx.sweep.findUnique({ where: { id: sweepId } });
      if (!sweep) return null;
      const failed = { sweepId, status: 'FAILED' as TaskStatus };
      const again = { status: 'QUEUED' as TaskStatus, error: null, finishedAt: null };
      const runs = await tx.run.findMany({ where: failed, select: { id: true } });
      const probes = await tx.probeTask.findMany({ where: failed, select: { id: true, runId: true } });
      const baselines = await tx.$queryRaw<{ id: string }[]>`
        SELECT b.id FROM baselines b JOIN sweep_baselines sb ON sb.baseline_id = b.id
        WHERE sb.sweep_id = ${sweepId}::uuid AND b.status = 'FAILED'`;
      if (runs.length + probes.length + baselines.length === 0) return { sweep, runIds: [], probeTaskIds: [], baselineIds: [] };
      await tx.run.updateMany({ where: failed, data: again });
      await tx.probeTask.updateMany({ where: failed, data: again });
      if (baselines.length) await tx.baseline.updateMany({ where: { id: { in: baselines.map((b) => b.id) } }, data: again });
      const updated = await tx.sweep.update({ where: { id: sweepId }, data: { status: 'QUEUED', finishedAt: null } });
      await appendEvent(tx, sweepId, 'sweep.status', { status: 'QUEUED', retried: { runs: runs.length, probeTasks: probes.length, baselines: baselines.length } });
      // A probe task is ready now only if its run already succeeded; the others follow their run.
      const succeededRuns = new Set(
        (await tx.run.findMany({ where: { id: { in: probes.map((p) => p.runId) }, status: 'SUCCEEDED' }, select: { id: true } })).map((r) => r.id),
      );
      return {
        sweep: updated,
        runIds: runs.map((r) => r.id),
        probeTaskIds: probes.filter((p) => succeededRuns.has(p.runId)).map((p) => p.id),
        baselineIds: baselines.map((b) => b.id),
      };
    });
  }

  /** Pauses or resumes a sweep; null for an unknown sweep. Returns the open (QUEUED) row ids. */
  async setPaused(sweepId: string, paused: boolean): Promise<{ sweep: Sweep; changed: boolean; runIds: string[]; probeTaskIds: string[] } | null> {
    return this.prisma.$transaction(async (tx) => {
      const sweep = await tx.sweep.findUnique({ where: { id: sweepId } });
      if (!sweep) return null;
      const changed = (sweep.pausedAt !== null) !== paused;
      const updated = changed ? await tx.sweep.update({ where: { id: sweepId }, data: { pausedAt: paused ? new Date() : null } }) : sweep;
      if (changed) await appendEvent(tx, sweepId, 'sweep.status', { status: sweep.status, paused });
      const runs = await tx.run.findMany({ where: { sweepId, status: 'QUEUED' }, select: { id: true } });
      const probes = await tx.probeTask.findMany({ where: { sweepId, status: 'QUEUED', run: { status: 'SUCCEEDED' } }, select: { id: true } });
      return { sweep: updated, changed, runIds: runs.map((r) => r.id), probeTaskIds: probes.map((p) => p.id) };
    });
  }

  /**
   * Cancels a sweep: the sweep and every unfinished run and probe task become CANCELLED in one
   * transaction. Running jobs see it on their next status poll and stop. Shared baselines are
   * left alone (other sweeps may need them). Returns the ids whose queued jobs can be removed.
   */
  async cancel(sweepId: string): Promise<{ sweep: Sweep; runIds: string[]; probeTaskIds: string[] } | null> {
    return this.prisma.$transaction(async (tx) => {
      const sweep = await tx.sweep.findUnique({ where: { id: sweepId } });
      if (!sweep) return null;
      const open = { sweepId, status: { in: ['QUEUED', 'RUNNING'] as TaskStatus[] } };
      const runs = await tx.run.findMany({ where: open, select: { id: true } });
      const probes = await tx.probeTask.findMany({ where: open, select: { id: true } });
      await tx.run.updateMany({ where: open, data: { status: 'CANCELLED', finishedAt: new Date() } });
      await tx.probeTask.updateMany({ where: open, data: { status: 'CANCELLED', finishedAt: new Date() } });
      const updated =
        sweep.status === 'SUCCEEDED' || sweep.status === 'FAILED' || sweep.status === 'CANCELLED'
          ? sweep
          : await tx.sweep.update({ where: { id: sweepId }, data: { status: 'CANCELLED', finishedAt: new Date() } });
      if (updated !== sweep) await appendEvent(tx, sweepId, 'sweep.status', { status: 'CANCELLED' });
      return { sweep: updated, runIds: runs.map((r) => r.id), probeTaskIds: probes.map((p) => p.id) };
    });
  }
}
