import { Prisma, type PrismaClient, type Sweep, type TaskStatus } from '../generated/client';
import { randomUUID } from 'node:crypto';
import { appendEvent } from './event.repository';
import { finiteNumber, isoInstant, labelBudget } from './json-sql';
import type { Db } from './types';

export interface NewRun {
  key: string;
  modelName: string;
  untrained: boolean;
  method: string;
  /** The network: a UNet or a DiT configuration, exactly one of them. */
  unet?: Prisma.InputJsonValue;
  dit?: Prisma.InputJsonValue;
  dataset: string;
  seed: number;
  hyper: Prisma.InputJsonValue;
  steps: number;
  /** A model pretrained elsewhere: the file it is imported from, and its sha256 when the spec names one. */
  sourcePath?: string;
  sourceSha256?: string;
}

export interface NewProbeTask {
  runKey: string;
  noiseLevel: number;
  layers: string[];
  protocol: Prisma.InputJsonValue;
  protocolKey: string;
  /** Label budgets probed on the task's features (counts and/or `all`); absent: just all. */
  labels?: (number | 'all')[];
}

export interface NewBaseline {
  dataset: string;
  kind: string;
  protocol: Prisma.InputJsonValue;
  protocolKey: string;
  /** The label budget (also in protocol and protocolKey); absent: all. */
  labels?: number;
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

/** A big sweep (one row per run and probe task), or a loaded machine (5.9 s measured for a tiny one on 2 cores at load 30), outlasts Prisma's default 5 s. */
const CREATE_TIMEOUT_MS = 60_000;

/**
 * A Postgres array literal of uuids or numbers (no quoting needed): one text parameter, which the
 * driver passes ~3x faster than a JavaScript array of 64,000 elements.
 */
const arrayLiteral = (values: (string | number)[]): string => `{${values.join(',')}}`;

/**
 * Every run of a new sweep in ONE statement: INSERT ... SELECT over jsonb_to_recordset of one JSON
 * parameter (Prisma's createMany took ~10 s for 1,000 runs on 2 busy cores; this takes milliseconds).
 */
async function insertRuns(tx: Db, sweepId: string, runIds: Map<string, string>, runs: NewRun[]): Promise<void> {
  const rows = JSON.stringify(runs.map((r) => ({ ...r, id: runIds.get(r.key) })));
  await tx.$executeRaw`
    INSERT INTO runs (id, sweep_id, key, model_name, method, unet, dit, dataset, seed, untrained, hyper, steps, source_path, source_sha256, created_at, updated_at)
    SELECT r.id, ${sweepId}::uuid, r.key, r."modelName", r.method, r.unet, r.dit, r.dataset, r.seed, r.untrained, r.hyper, r.steps, r."sourcePath", r."sourceSha256", now(), now()
    FROM jsonb_to_recordset(${rows}::jsonb) AS r(id uuid, key text, "modelName" text, method text, unet jsonb, dit jsonb, dataset text, seed int, untrained boolean, hyper jsonb, steps int, "sourcePath" text, "sourceSha256" text)`;
}

/**
 * Every probe task of a new sweep in ONE statement: INSERT ... SELECT over unnest of parallel
 * arrays (run, noise level, index of the task's layer list, index of its protocol), the distinct
 * layer lists and protocols passed once each. Parameters stay a handful at any sweep size.
 * Noise levels are finite numbers (the spec's schema), so their text form is a valid float8.
 */
async function insertProbeTasks(tx: Db, sweepId: string, runIds: Map<string, string>, tasks: NewProbeTask[]): Promise<void> {
  const layerSets = new Map<string, number>();
  const protocols = new Map<string, number>();
  const protocolValues: Prisma.InputJsonValue[] = [];
  const protocolKeys: string[] = [];
  const protocolLabels: ((number | 'all')[] | null)[] = [];
  const run: string[] = [];
  const noise: number[] = [];
  const layerIndex: number[] = [];
  const protocolIndex: number[] = [];
  for (const t of tasks) {
    const runId = runIds.get(t.runKey);
    if (!runId) throw new Error(`probe task of an unknown run "${t.runKey}"`);
    const layers = JSON.stringify(t.layers);
    if (!layerSets.has(layers)) layerSets.set(layers, layerSets.size);
    const pk = `${t.protocolKey}\u0000${JSON.stringify(t.protocol)}\u0000${JSON.stringify(t.labels ?? null)}`;
    if (!protocols.has(pk)) {
      protocols.set(pk, protocols.size);
      protocolValues.push(t.protocol);
      protocolKeys.push(t.protocolKey);
      protocolLabels.push(t.labels ?? null);
    }
    run.push(runId);
    noise.push(t.noiseLevel);
    layerIndex.push(layerSets.get(layers) as number);
    protocolIndex.push(protocols.get(pk) as number);
  }
  const layerLists = JSON.stringify([...layerSets.keys()].map((l) => JSON.parse(l) as string[]));
  await tx.$executeRaw`
    WITH layer_sets AS (
      SELECT (o - 1)::int AS i, ARRAY(SELECT jsonb_array_elements_text(l)) AS layers
      FROM jsonb_array_elements(${layerLists}::jsonb) WITH ORDINALITY AS s(l, o)
    ), protocols AS (
      SELECT (o - 1)::int AS i, p AS protocol, (${protocolKeys}::text[])[o] AS key,
             NULLIF(${JSON.stringify(protocolLabels)}::jsonb -> (o - 1)::int, 'null'::jsonb) AS labels
      FROM jsonb_array_elements(${JSON.stringify(protocolValues)}::jsonb) WITH ORDINALITY AS s(p, o)
    )
    INSERT INTO probe_tasks (id, sweep_id, run_id, noise_level, layers, protocol, protocol_key, labels, created_at, updated_at)
    SELECT gen_random_uuid(), ${sweepId}::uuid, t.run_id, t.noise_level, l.layers, p.protocol, p.key, p.labels, now(), now()
    FROM unnest(${arrayLiteral(run)}::text::uuid[], ${arrayLiteral(noise)}::text::float8[], ${arrayLiteral(layerIndex)}::text::int[], ${arrayLiteral(protocolIndex)}::text::int[])
      AS t(run_id, noise_level, li, pi)
    JOIN layer_sets l ON l.i = t.li JOIN protocols p ON p.i = t.pi`;
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
        // Batched: one INSERT ... SELECT for the runs (ids made here, so that they come back in
        // order) and one for the probe tasks, whatever their number.
        const runIds = new Map(input.runs.map((run) => [run.key, randomUUID()]));
        if (input.runs.length > 0) await insertRuns(tx, sweep.id, runIds, input.runs);
        if (input.probeTasks.length > 0) await insertProbeTasks(tx, sweep.id, runIds, input.probeTasks);
        const pendingBaselineIds: string[] = [];
        for (const b of input.baselines) {
          const baseline = await tx.baseline.upsert({
            where: { dataset_kind_protocolKey: { dataset: b.dataset, kind: b.kind, protocolKey: b.protocolKey } },
            create: { dataset: b.dataset, kind: b.kind, protocol: b.protocol, protocolKey: b.protocolKey, labels: b.labels ?? null },
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
      }, { timeout: CREATE_TIMEOUT_MS });
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
  /**
   * A page of sweeps, newest first, without their specs (`GET /api/sweeps` does not show them, and
   * a spec is the largest column of the row: reading 50 of them cost more than the page itself).
   */
  list(options: { limit: number; status?: string; before?: Date }): Promise<Omit<Sweep, 'spec'>[]> {
    return this.prisma.sweep.findMany({
      omit: { spec: true },
      where: {
        ...(options.status ? { status: options.status as TaskStatus } : {}),
        ...(options.before ? { createdAt: { lt: options.before } } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: options.limit,
    });
  }

  /**
   * The body of `GET /api/sweeps/:id` (sweepDetailSchema of libs/contracts, in its wire form and
   * key order) as JSON text built by Postgres in ONE statement: the sweep, its progress counts, its
   * runs (by key), probe tasks (by run id, noise level, protocol) and baselines (by data set, kind,
   * protocol). Null when there is no such sweep. One round trip and one string however many tasks
   * the sweep has: no row objects, no second serialisation in the API.
   */
  async detailJson(sweepId: string): Promise<string | null> {
    const counts = (alias: string) => {
      const col = Prisma.raw(`${alias}.status`);
      return Prisma.sql`'QUEUED', count(*) FILTER (WHERE ${col} = 'QUEUED'), 'RUNNING', count(*) FILTER (WHERE ${col} = 'RUNNING'),
        'SUCCEEDED', count(*) FILTER (WHERE ${col} = 'SUCCEEDED'), 'FAILED', count(*) FILTER (WHERE ${col} = 'FAILED'),
        'CANCELLED', count(*) FILTER (WHERE ${col} = 'CANCELLED')`;
    };
    // The sweep's probe tasks are read once (a CTE named twice is materialised): counted and listed.
    const rows = await this.prisma.$queryRaw<{ body: string }[]>`
      WITH tasks AS (
        SELECT t.id, t.run_id, t.noise_level, t.protocol_key, t.layers, t.status, t.attempts, t.error, t.worker_id, t.finished_at
        FROM probe_tasks t WHERE t.sweep_id = ${sweepId}::uuid)
      SELECT json_build_object(
        'id', s.id, 'name', s.name, 'dataset', s.dataset, 'specHash', s.spec_hash, 'idempotencyKey', s.idempotency_key,
        'status', s.status, 'priority', s.priority, 'maxConcurrency', s.max_concurrency,
        'pausedAt', ${isoInstant(Prisma.sql`s.paused_at`)}, 'createdAt', ${isoInstant(Prisma.sql`s.created_at`)},
        'updatedAt', ${isoInstant(Prisma.sql`s.updated_at`)}, 'finishedAt', ${isoInstant(Prisma.sql`s.finished_at`)},
        'spec', s.spec, 'paused', s.paused_at IS NOT NULL,
        'progress', json_build_object(
          'runs', (SELECT json_build_object(${counts('r')}, 'stepsDone', COALESCE(sum(r.steps_done), 0), 'steps', COALESCE(sum(r.steps), 0))
                   FROM runs r WHERE r.sweep_id = s.id),
          'probeTasks', (SELECT json_build_object(${counts('t')}) FROM tasks t),
          'baselines', (SELECT json_build_object(${counts('b')}) FROM sweep_baselines sb JOIN baselines b ON b.id = sb.baseline_id WHERE sb.sweep_id = s.id)),
        'runs', COALESCE((
          SELECT json_agg(x) FROM (
            SELECT r.id, r.key, r.method, r.model_name AS model, r.untrained, r.seed, r.status, r.steps, r.steps_done AS "stepsDone",
                   ${finiteNumber(Prisma.sql`r.last_loss`)} AS "lastLoss", r.parameters, r.attempts, r.error, r.worker_id AS "workerId", r.backend,
                   r.stopped_early_at AS "stoppedEarlyAt", ${isoInstant(Prisma.sql`r.started_at`)} AS "startedAt", ${isoInstant(Prisma.sql`r.finished_at`)} AS "finishedAt",
                   CASE WHEN r.source_path IS NULL THEN NULL ELSE json_build_object('path', r.source_path, 'sha256', r.source_sha256) END AS source
            FROM runs r WHERE r.sweep_id = s.id ORDER BY r.key) x), '[]'::json),
        'probeTasks', COALESCE((
          SELECT json_agg(x) FROM (
            SELECT t.id, r.key AS run, ${finiteNumber(Prisma.sql`t.noise_level`)} AS "noiseLevel", COALESCE(t.layers, '{}') AS layers, t.status, t.attempts, t.error,
                   t.worker_id AS "workerId", ${isoInstant(Prisma.sql`t.finished_at`)} AS "finishedAt"
            FROM tasks t JOIN runs r ON r.id = t.run_id ORDER BY t.run_id, t.noise_level, t.protocol_key) x), '[]'::json),
        'baselines', COALESCE((
          SELECT json_agg(x) FROM (
            SELECT b.id, b.kind, b.dataset, b.protocol_key AS "protocolKey", ${labelBudget(Prisma.sql`b.labels`)} AS labels, b.status,
                   ${finiteNumber(Prisma.sql`b.accuracy`)} AS accuracy, b.attempts, b.error, b.worker_id AS "workerId", ${isoInstant(Prisma.sql`b.finished_at`)} AS "finishedAt"
            FROM sweep_baselines sb JOIN baselines b ON b.id = sb.baseline_id WHERE sb.sweep_id = s.id ORDER BY b.dataset, b.kind, b.protocol_key) x), '[]'::json)
      )::text AS body
      FROM sweeps s WHERE s.id = ${sweepId}::uuid`;
    return rows[0]?.body ?? null;
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
