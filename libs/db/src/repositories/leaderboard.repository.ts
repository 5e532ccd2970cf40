import { Prisma, type PrismaClient } from '../generated/client';
import { finiteNumber, labelBudget } from './json-sql';

export interface LeaderboardFilter {
  dataset?: string;
  method?: string;
  sweepId?: string;
  /**
   * `cell`: every (checkpoint, layer, noise) result; `run`: each run's best cell; `config`: mean and
   * spread over seeds of each (sweep, model config, layer, noise level, protocol). Default cell.
   */
  per?: 'cell' | 'run' | 'config';
  /** Rows returned, 1..500. Default 20. */
  limit?: number;
  /** Continue after the page that returned this `nextCursor` (same filter). Default: the first page. */
  cursor?: string;
  /**
   * The label budget: results of probes trained on this many labelled images (in total,
   * class-balanced), or null for all of the protocol's training images. Default null (all):
   * numbers at different budgets never mix.
   */
  labels?: number | null;
  /**
   * `linear`: the linear probes' results (fast, reference); `finetune`: fine-tuned cells. Default
   * linear: the two never share a ranking. `per=run` ranks linear results only.
   */
  protocol?: 'linear' | 'finetune';
}

/** One page of the leaderboard: ranks continue across pages; `nextCursor` is null on the last page. */
export interface LeaderboardPage<Row> {
  rows: (Row & { rank: number })[];
  nextCursor: string | null;
}

export interface LeaderboardRow {
  /** The probe result's id (the tie-breaker of the ranking). */
  resultId: string;
  accuracy: number;
  layer: string;
  noiseLevel: number;
  method: string;
  dataset: string;
  modelName: string;
  runKey: string;
  seed: number;
  parameters: number | null;
  step: number;
  sweepId: string;
  sweepName: string;
  runId: string;
  checkpointId: string;
  protocolKey: string;
  noiseProtocol: string;
  probeProtocol: string;
  pooling: string;
  /** The label budget (labelled training images in total, class-balanced); null: all. */
  labels: number | null;
  backend: string;
  /** The device that computed it (the WebGPU adapter, else the worker's device); null on results recorded before devices were. */
  device: string | null;
  /** An imported model's provenance (the safetensors file and its sha256); null for a model its sweep pretrained. */
  source: ModelSource | null;
  createdAt: Date;
}

/** Where an imported model's weights came from. */
export interface ModelSource {
  path: string;
  /** null until the import verified the file. */
  sha256: string | null;
}

/** One (sweep, model config, layer, noise level, protocol) cell over its seeds. */
export interface LeaderboardConfigRow {
  /** Mean top-1 accuracy over the seeds (the ranking key). */
  mean: number;
  /** Sample standard deviation over the seeds; null with one seed. */
  std: number | null;
  min: number;
  max: number;
  /** Number of seeds (runs). */
  n: number;
  seeds: number[];
  layer: string;
  noiseLevel: number;
  method: string;
  dataset: string;
  modelName: string;
  parameters: number | null;
  sweepId: string;
  sweepName: string;
  protocolKey: string;
  noiseProtocol: string;
  probeProtocol: string;
  pooling: string;
  /** An imported model's provenance; null for a model its sweep pretrained. */
  source: ModelSource | null;
  /** The label budget; null: all. */
  labels: number | null;
  /**
   * On a linear cell: the same (sweep, model, layer, noise level) fine-tuned (`probe.finetune`),
   * mean over its seeds, at its own budget; null when not fine-tuned (or on a fine-tuned row).
   */
  finetuned: FinetunedCell | null;
}

/** A fine-tuned cell beside the linear one. */
export interface FinetunedCell {
  mean: number;
  std: number | null;
  n: number;
  protocolKey: string;
  /** The fine-tuning's label budget; null: all. */
  labels: number | null;
}

export interface UntrainedBaselineRow {
  dataset: string;
  method: string;
  accuracy: number;
  layer: string;
  noiseLevel: number;
  featureDim: number;
  protocolKey: string;
  modelName: string;
  /** The label budget; null: all. */
  labels: number | null;
  backend: string;
  device: string | null;
}

export interface HeatmapCell {
  /** The model's name; an untrained-network control's grid is named `<model> (untrained)`. */
  modelName: string;
  /** The cell belongs to the untrained-network control (a baseline, never the best). */
  untrained: boolean;
  method: string;
  layer: string;
  noiseLevel: number;
  mean: number;
  std: number | null;
  min: number;
  max: number;
  n: number;
  /** The label budget; null: all. */
  labels: number | null;
}

/**
 * Accuracy against the number of labels in one sweep: per model (and untrained control) the cell
 * that is best at the largest budget, its mean over seeds at every budget; the raw-pixel baseline
 * at every budget. `labels` null: all.
 */
export interface LabelCurves {
  /** The sweep's budgets with a result, ascending, all (null) last. */
  budgets: (number | null)[];
  models: { modelName: string; untrained: boolean; method: string; layer: string; noiseLevel: number; protocolKey: string; points: { labels: number | null; mean: number; std: number | null; n: number }[] }[];
  pixels: { labels: number | null; accuracy: number }[];
}

/** The best trained cell of a sweep beside its baselines, under the same probe protocol. */
export interface SweepVerdict {
  /** The trained models' best (model, layer, noise level) cell, by mean over seeds; null before any result. */
  best: LeaderboardConfigRow | null;
  /** The untrained network's best cell (mean over its seeds) under the best's protocol; null when not part of the sweep or not probed yet. */
  untrained: LeaderboardConfigRow | null;
  /** The raw-pixel baseline of the sweep's data set under the best's protocol (its budget too); null when not part of the sweep or not finished. */
  pixels: { accuracy: number; featureDim: number | null; protocolKey: string } | null;
  /** The label budget every number of the verdict is at; null: all. */
  labels: number | null;
  /** best.mean minus each baseline's accuracy (fractions); null where either side is missing. */
  margins: { pixels: number | null; untrained: number | null };
}

/** Rows of a page, 1..500. */
const pageSize = (limit?: number): number => Math.min(Math.max(limit ?? 20, 1), 500);

/** Where the previous page ended: the sort key of its last row and that row's rank. */
interface CellCursor {
  k: 'cell' | 'run';
  a: number;
  c: string;
  i: string;
  r: number;
}
interface ConfigCursor {
  k: 'config';
  m: number;
  n: number;
  name: string;
  layer: string;
  noise: number;
  p: string;
  s: string;
  r: number;
}

/** A cursor that does not decode, or belongs to another `per`: the caller answers 400. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

const encodeCursor = (c: CellCursor | ConfigCursor): string => Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');

function decodeCursor<K extends 'cell' | 'run' | 'config'>(raw: string, kind: K): K extends 'config' ? ConfigCursor : CellCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('not a cursor of this leaderboard: pass the nextCursor of the previous page unchanged');
  }
  const c = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const ok =
    c.k === kind &&
    Number.isInteger(c.r) &&
    (kind === 'config'
      ? typeof c.m === 'number' && Number.isInteger(c.n) && typeof c.name === 'string' && typeof c.layer === 'string' && typeof c.noise === 'number' && typeof c.p === 'string' && /^[0-9a-f-]{36}$/.test(String(c.s))
      : typeof c.a === 'number' && !Number.isNaN(Date.parse(String(c.c))) && /^[0-9a-f-]{36}$/.test(String(c.i)));
  if (!ok) throw new InvalidCursorError(`not a cursor of the per=${kind} leaderboard: pass the nextCursor of the previous page, with the same filter`);
  return c as unknown as K extends 'config' ? ConfigCursor : CellCursor;
}

/**
 * The leaderboard as reviewed SQL. The `cell` ranking sorts and filters probe_results alone, whose
 * (untrained, filter, accuracy DESC, created_at, id) indexes turn "top N" into an index scan at any
 * table size; `run`, `config`, the untrained baseline and the heatmap read the summary rows kept on
 * write (./summary) along the same kind of index. The joins then touch only the N rows returned. Pages continue with a keyset cursor (the last row's sort key), so
 * page k costs what page 1 does and no row is skipped or repeated when results arrive meanwhile
 * above the cursor.
 */
export class LeaderboardRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * The filter on a table aliased `t` that carries untrained, dataset, method, sweep_id (and
   * protocol_key): probe_results, leaderboard_runs, leaderboard_configs.
   */
  private filters(t: string, filter: LeaderboardFilter, untrained = false, protocolKey?: string): Prisma.Sql[] {
    const a = Prisma.raw(t);
    // Untrained-network controls are baselines, listed beside the ranking, never in it.
    const where: Prisma.Sql[] = [Prisma.sql`${a}.untrained = ${Prisma.raw(untrained ? 'true' : 'false')}`];
    if (filter.dataset) where.push(Prisma.sql`${a}.dataset = ${filter.dataset}`);
    if (filter.method) where.push(Prisma.sql`${a}.method = ${filter.method}`);
    if (filter.sweepId) where.push(Prisma.sql`${a}.sweep_id = ${filter.sweepId}::uuid`);
    if (protocolKey !== undefined) where.push(Prisma.sql`${a}.protocol_key = ${protocolKey}`);
    // leaderboard_runs holds linear results only (./summary).
    if (t !== 'lr') where.push(filter.protocol === 'finetune' ? Prisma.sql`${a}.probe_protocol = 'finetune'` : Prisma.sql`${a}.probe_protocol <> 'finetune'`);
    // One budget at a time (default all): accuracies at different budgets never share a ranking.
    where.push(filter.labels == null ? Prisma.sql`${a}.labels IS NULL` : Prisma.sql`${a}.labels = ${filter.labels}::int`);
    return where;
  }

  /** The first `limit` rows of the `cell` or `run` ranking (after `cursor`). */
  async top(filter: LeaderboardFilter): Promise<LeaderboardRow[]> {
    return (await this.cells(filter, pageSize(filter.limit))).rows;
  }

  /** The first `limit` rows of the `config` ranking (after `cursor`). */
  async topByConfig(filter: LeaderboardFilter): Promise<LeaderboardConfigRow[]> {
    return (await this.configs(filter, pageSize(filter.limit))).rows;
  }

  /** One page of the ranking `filter.per` asks for, with the cursor of the next page. */
  async page(filter: LeaderboardFilter): Promise<LeaderboardPage<LeaderboardRow> | LeaderboardPage<LeaderboardConfigRow>> {
    const limit = pageSize(filter.limit);
    const { rows, rank0, more } = filter.per === 'config' ? await this.configs(filter, limit) : await this.cells(filter, limit);
    const ranked = (rows as (LeaderboardRow | LeaderboardConfigRow)[]).map((r, i) => ({ ...r, rank: rank0 + i + 1 }));
    const last = ranked.at(-1);
    let nextCursor: string | null = null;
    if (more && last) {
      nextCursor =
        'mean' in last
          ? encodeCursor({ k: 'config', m: last.mean, n: last.n, name: last.modelName, layer: last.layer, noise: last.noiseLevel, p: last.protocolKey, s: last.sweepId, r: last.rank })
          : encodeCursor({ k: filter.per === 'run' ? 'run' : 'cell', a: last.accuracy, c: last.createdAt.toISOString(), i: last.resultId, r: last.rank });
    }
    return { rows: ranked, nextCursor } as LeaderboardPage<LeaderboardRow> | LeaderboardPage<LeaderboardConfigRow>;
  }

  /**
   * `cell`: probe_results itself, read along the (filter, accuracy DESC, created_at, id) index that
   * matches the filter. `run`: leaderboard_runs (each run's best result, kept on write) along the
   * same kind of index, then its result rows by primary key. Either way a page reads `limit + 1`
   * index entries after the cursor, and the joins touch only those rows.
   */
  private async cells(filter: LeaderboardFilter, limit: number): Promise<{ rows: LeaderboardRow[]; rank0: number; more: boolean }> {
    const kind = filter.per === 'run' ? 'run' : 'cell';
    const after = filter.cursor ? decodeCursor(filter.cursor, kind) : null;
    const t = kind === 'run' ? 'lr' : 'pr';
    const id = Prisma.raw(kind === 'run' ? 'lr.result_id' : 'pr.id');
    const a = Prisma.raw(t);
    const where = Prisma.join(this.filters(t, filter), ' AND ');
    const n = limit + 1;
    const cols = kind === 'run' ? Prisma.sql`lr.result_id, lr.accuracy, lr.created_at` : Prisma.sql`pr.*`;
    const from = kind === 'run' ? Prisma.sql`leaderboard_runs lr` : Prisma.sql`probe_results pr`;
    const idName = Prisma.raw(kind === 'run' ? 'result_id' : 'id');
    // Strictly after the cursor in (accuracy DESC, created_at ASC, id ASC), as two index range scans
    // of at most `limit + 1` entries each: the rest of the cursor's accuracy (equality, then a row
    // comparison on the index's next columns) and every lower accuracy. However many results share
    // an accuracy, a page reads no more than that.
    // Every ORDER BY on the table starts with its `labels` column: the filter holds it to one value,
    // but `labels IS NULL` (all labels) is not an equality to the planner, so without it the index's
    // order (untrained, labels, ..., accuracy DESC, ...) would not be seen to match and every page
    // would sort the whole filter (measured: 0.4-2.8 s at 1,000,000 results, against 18 ms at 10,000).
    const ranked = after
      ? Prisma.sql`
          SELECT * FROM (
            (SELECT ${cols} FROM ${from} WHERE ${where} AND ${a}.accuracy = ${after.a}::float8
               AND (${a}.created_at, ${id}) > (${new Date(after.c)}::timestamptz, ${after.i}::uuid)
             ORDER BY ${a}.labels, ${a}.created_at ASC, ${id} ASC LIMIT ${n})
            UNION ALL
            (SELECT ${cols} FROM ${from} WHERE ${where} AND ${a}.accuracy < ${after.a}::float8
             ORDER BY ${a}.labels, ${a}.accuracy DESC, ${a}.created_at ASC, ${id} ASC LIMIT ${n})
          ) u ORDER BY u.accuracy DESC, u.created_at ASC, u.${idName} ASC LIMIT ${n}`
      : Prisma.sql`SELECT ${cols} FROM ${from} WHERE ${where} ORDER BY ${a}.labels, ${a}.accuracy DESC, ${a}.created_at ASC, ${id} ASC LIMIT ${n}`;
    const top = kind === 'run' ? Prisma.sql`SELECT pr.* FROM (${ranked}) best JOIN probe_results pr ON pr.id = best.result_id` : ranked;
    const rows = await this.prisma.$queryRaw<LeaderboardRow[]>`
      WITH top AS (${top})
      SELECT top.id AS "resultId", top.accuracy, top.layer, top.noise_level AS "noiseLevel", top.method, top.dataset,
             r.model_name AS "modelName", r.key AS "runKey", r.seed, r.parameters,
             c.step, top.sweep_id AS "sweepId", s.name AS "sweepName", top.run_id AS "runId",
             top.checkpoint_id AS "checkpointId", top.protocol_key AS "protocolKey",
             top.noise_protocol AS "noiseProtocol", top.probe_protocol AS "probeProtocol", top.pooling, top.labels,
             top.backend, top.device, CASE WHEN r.source_path IS NULL THEN NULL ELSE json_build_object('path', r.source_path, 'sha256', r.source_sha256) END AS source, top.created_at AS "createdAt"
      FROM top
      JOIN runs r ON r.id = top.run_id
      JOIN checkpoints c ON c.id = top.checkpoint_id
      JOIN sweeps s ON s.id = top.sweep_id
      ORDER BY top.accuracy DESC, top.created_at ASC, top.id ASC`;
    return { rows: rows.slice(0, limit), rank0: after?.r ?? 0, more: rows.length > limit };
  }

  /**
   * Mean and spread over seeds: the runs of one sweep that share a model (same name, hence same
   * config and hyper-parameters) are grouped per (layer, noise level, protocol), ranked by mean.
   * Read from leaderboard_configs (one row per such group, kept on write) along the index of the
   * filter in the ranking's order. `untrained`: the untrained-network control's cells instead of the
   * trained models'; `protocolKey`: only results of that probe protocol.
   */
  private async configs(filter: LeaderboardFilter, limit: number, untrained = false, protocolKey?: string): Promise<{ rows: LeaderboardConfigRow[]; rank0: number; more: boolean }> {
    const after = filter.cursor ? decodeCursor(filter.cursor, 'config') : null;
    const where = Prisma.join(this.filters('g', filter, untrained, protocolKey), ' AND ');
    const n = limit + 1;
    const order = Prisma.sql`g.mean DESC, g.n DESC, g.model_name, g.layer, g.noise_level, g.protocol_key, g.sweep_id`;
    // On the table itself the order starts with `labels`, held to one value by the filter: see `cells`.
    const indexOrder = Prisma.sql`g.labels, ${order}`;
    // Strictly after the cursor in (mean DESC, n DESC, model, layer, noise, protocol, sweep), as
    // three index range scans of at most `limit + 1` entries each: the rest of the cursor's (mean, n),
    // the rest of its mean, every lower mean.
    const ranked = after
      ? Prisma.sql`
          SELECT * FROM (
            (SELECT * FROM leaderboard_configs g WHERE ${where} AND g.mean = ${after.m}::float8 AND g.n = ${after.n}
               AND (g.model_name, g.layer, g.noise_level, g.protocol_key, g.sweep_id) > (${after.name}, ${after.layer}, ${after.noise}::float8, ${after.p}, ${after.s}::uuid)
             ORDER BY ${indexOrder} LIMIT ${n})
            UNION ALL
            (SELECT * FROM leaderboard_configs g WHERE ${where} AND g.mean = ${after.m}::float8 AND g.n < ${after.n} ORDER BY ${indexOrder} LIMIT ${n})
            UNION ALL
            (SELECT * FROM leaderboard_configs g WHERE ${where} AND g.mean < ${after.m}::float8 ORDER BY ${indexOrder} LIMIT ${n})
          ) g ORDER BY ${order} LIMIT ${n}`
      : Prisma.sql`SELECT * FROM leaderboard_configs g WHERE ${where} ORDER BY ${indexOrder} LIMIT ${n}`;
    const rows = await this.prisma.$queryRaw<LeaderboardConfigRow[]>`
      SELECT g.mean, g.std, g.min, g.max, g.n, g.seeds, g.layer, g.noise_level AS "noiseLevel", g.method, g.dataset,
             g.model_name AS "modelName", g.parameters, g.sweep_id AS "sweepId", s.name AS "sweepName",
             g.protocol_key AS "protocolKey", g.noise_protocol AS "noiseProtocol", g.probe_protocol AS "probeProtocol", g.pooling, g.labels,
             src.source, ft.finetuned
      FROM (${ranked}) g JOIN sweeps s ON s.id = g.sweep_id
      -- The same cell fine-tuned (the best of its fine-tuning protocols, if several), beside a linear cell.
      LEFT JOIN LATERAL (
        SELECT json_build_object('mean', f.mean, 'std', f.std, 'n', f.n, 'protocolKey', f.protocol_key, 'labels', f.labels) AS finetuned
        FROM leaderboard_configs f
        WHERE g.probe_protocol <> 'finetune' AND f.sweep_id = g.sweep_id AND f.model_name = g.model_name AND f.untrained = g.untrained
          AND f.noise_level = g.noise_level AND f.layer = g.layer AND f.probe_protocol = 'finetune'
        ORDER BY f.mean DESC, f.protocol_key LIMIT 1
      ) ft ON true
      -- An imported model's provenance: its one run (a sweep's model name is unique).
      LEFT JOIN LATERAL (
        SELECT CASE WHEN r.source_path IS NULL THEN NULL ELSE json_build_object('path', r.source_path, 'sha256', r.source_sha256) END AS source
        FROM runs r WHERE r.sweep_id = g.sweep_id AND r.model_name = g.model_name AND r.untrained = g.untrained AND r.source_path IS NOT NULL LIMIT 1
      ) src ON true
      ORDER BY ${order}`;
    return { rows: rows.slice(0, limit), rank0: after?.r ?? 0, more: rows.length > limit };
  }

  /**
   * The untrained-network baseline: per data set and method, its best probe cell (restricted to
   * one sweep when given), to stand beside the trained models' ranking. The best of the controls'
   * per-run bests (leaderboard_runs: one row per control run), then their result rows by key.
   */
  async untrainedBest(datasets: string[], sweepId?: string, labels: number | null = null): Promise<UntrainedBaselineRow[]> {
    if (datasets.length === 0) return [];
    const sweep = sweepId ? Prisma.sql`AND lr.sweep_id = ${sweepId}::uuid` : Prisma.empty;
    const budget = labels === null ? Prisma.sql`AND lr.labels IS NULL` : Prisma.sql`AND lr.labels = ${labels}::int`;
    return this.prisma.$queryRaw<UntrainedBaselineRow[]>`
      SELECT pr.dataset, pr.method, pr.accuracy, pr.layer, pr.noise_level AS "noiseLevel",
             pr.feature_dim AS "featureDim", pr.protocol_key AS "protocolKey", r.model_name AS "modelName", pr.labels, pr.backend, pr.device
      FROM (
        SELECT DISTINCT ON (lr.dataset, lr.method) lr.result_id, lr.run_id FROM leaderboard_runs lr
        WHERE lr.untrained AND lr.dataset IN (${Prisma.join(datasets)}) ${sweep} ${budget}
        ORDER BY lr.dataset, lr.method, lr.accuracy DESC, lr.created_at ASC, lr.result_id ASC
      ) best
      JOIN probe_results pr ON pr.id = best.result_id
      JOIN runs r ON r.id = best.run_id
      ORDER BY pr.dataset, pr.method`;
  }

  /**
   * The verdict of one sweep: the trained models' best cell (mean over seeds) beside the raw-pixel
   * baseline and the untrained network's best cell, all under the best cell's probe protocol. A
   * control is never the best: untrained cells are ranked apart.
   */
  async verdict(sweepId: string, labels: number | null = null): Promise<SweepVerdict> {
    const [best] = (await this.configs({ sweepId, labels }, 1)).rows;
    // The control's best cell under the best's protocol (its budget too): under another one it would not compare.
    const [untrained] = (await this.configs({ sweepId, labels }, 1, true, best?.protocolKey)).rows;
    const budget = labels === null ? Prisma.sql`b.labels IS NULL` : Prisma.sql`b.labels = ${labels}::int`;
    const baselines = await this.prisma.$queryRaw<{ accuracy: number; featureDim: number | null; protocolKey: string }[]>`
      SELECT b.accuracy, b.feature_dim AS "featureDim", b.protocol_key AS "protocolKey"
      FROM sweep_baselines sb JOIN baselines b ON b.id = sb.baseline_id
      WHERE sb.sweep_id = ${sweepId}::uuid AND b.kind = 'pixels' AND b.status = 'SUCCEEDED' AND b.accuracy IS NOT NULL AND ${budget}
      ORDER BY b.created_at ASC`;
    const pixels = (best ? baselines.find((b) => b.protocolKey === best.protocolKey) : baselines[0]) ?? null;
    return {
      best: best ?? null,
      untrained: untrained ?? null,
      pixels,
      labels,
      margins: {
        pixels: best && pixels ? best.mean - pixels.accuracy : null,
        untrained: best && untrained ? best.mean - untrained.mean : null,
      },
    };
  }

  /** Mean and spread over seeds of every (model, layer, noise level) cell of one sweep (heatmap_cells, kept on write); untrained-network cells flagged. */
  async heatmap(sweepId: string, labels: number | null = null): Promise<HeatmapCell[]> {
    const budget = labels === null ? Prisma.sql`h.labels IS NULL` : Prisma.sql`h.labels = ${labels}::int`;
    return this.prisma.$queryRaw<HeatmapCell[]>`
      SELECT h.model_name || CASE WHEN h.untrained THEN ' (untrained)' ELSE '' END AS "modelName", h.untrained,
             h.method, h.layer, h.noise_level AS "noiseLevel", h.mean, h.std, h.min, h.max, h.n, h.labels
      FROM heatmap_cells h
      WHERE h.sweep_id = ${sweepId}::uuid AND ${budget}
      ORDER BY h.untrained, h.model_name, h.noise_level, h.layer`;
  }

  /**
   * The body of `GET /api/sweeps/:id/heatmap` (heatmapSchema of libs/contracts, wire form and key
   * order) as JSON text built by Postgres in ONE statement: {@link heatmap}'s cells at one label
   * budget and {@link budgets}, in their order. Null when there is no such sweep. One round trip and
   * one string for a sweep's thousand-odd cells: no row objects, no second serialisation in the API.
   */
  async heatmapJson(sweepId: string, labels: number | null = null): Promise<string | null> {
    const budget = labels === null ? Prisma.sql`h.labels IS NULL` : Prisma.sql`h.labels = ${labels}::int`;
    const rows = await this.prisma.$queryRaw<{ body: string }[]>`
      SELECT json_build_object(
        'sweepId', s.id,
        'labels', ${labels === null ? Prisma.sql`'"all"'::json` : Prisma.sql`to_json(${labels}::int)`},
        'budgets', COALESCE((
          SELECT json_agg(${labelBudget(Prisma.sql`g.labels`)} ORDER BY g.labels ASC NULLS LAST)
          FROM (SELECT DISTINCT labels FROM leaderboard_configs WHERE sweep_id = s.id AND probe_protocol <> 'finetune') g), '[]'::json),
        'cells', COALESCE((
          SELECT json_agg(x) FROM (
            SELECT h.model_name || CASE WHEN h.untrained THEN ' (untrained)' ELSE '' END AS "modelName", h.untrained, h.method, h.layer,
                   ${finiteNumber(Prisma.sql`h.noise_level`)} AS "noiseLevel", ${finiteNumber(Prisma.sql`h.mean`)} AS mean, ${finiteNumber(Prisma.sql`h.std`)} AS std,
                   ${finiteNumber(Prisma.sql`h.min`)} AS min, ${finiteNumber(Prisma.sql`h.max`)} AS max, h.n, ${labelBudget(Prisma.sql`h.labels`)} AS labels
            FROM heatmap_cells h WHERE h.sweep_id = s.id AND ${budget}
            ORDER BY h.untrained, h.model_name, h.noise_level, h.layer, h.method) x), '[]'::json)
      )::text AS body
      FROM sweeps s WHERE s.id = ${sweepId}::uuid`;
    return rows[0]?.body ?? null;
  }

  /** The label budgets one sweep has results at, ascending, all (null) last. */
  async budgets(sweepId: string): Promise<(number | null)[]> {
    const rows = await this.prisma.$queryRaw<{ labels: number | null }[]>`
      SELECT DISTINCT labels FROM leaderboard_configs WHERE sweep_id = ${sweepId}::uuid AND probe_protocol <> 'finetune' ORDER BY labels ASC NULLS LAST`;
    return rows.map((r) => r.labels);
  }

  /**
   * Accuracy against labels in one sweep (see {@link LabelCurves}): per model and control, the cell
   * best at the largest budget probed (mean over seeds, then the ranking's order), followed across
   * every budget; the pixel baseline at every budget of the sweep.
   */
  async labelCurves(sweepId: string): Promise<LabelCurves> {
    const cells = await this.prisma.$queryRaw<{ modelName: string; untrained: boolean; method: string; layer: string; noiseLevel: number; baseKey: string; labels: number | null; mean: number; std: number | null; n: number }[]>`
      SELECT g.model_name AS "modelName", g.untrained, g.method, g.layer, g.noise_level AS "noiseLevel",
             regexp_replace(g.protocol_key, ';labels=[0-9]+$', '') AS "baseKey", g.labels, g.mean, g.std, g.n
      FROM leaderboard_configs g WHERE g.sweep_id = ${sweepId}::uuid AND g.probe_protocol <> 'finetune'
      ORDER BY g.untrained, g.model_name, g.labels ASC NULLS LAST, g.mean DESC, g.n DESC, g.layer, g.noise_level, g.protocol_key`;
    const pixels = await this.prisma.$queryRaw<{ labels: number | null; accuracy: number }[]>`
      SELECT b.labels, b.accuracy FROM sweep_baselines sb JOIN baselines b ON b.id = sb.baseline_id
      WHERE sb.sweep_id = ${sweepId}::uuid AND b.kind = 'pixels' AND b.status = 'SUCCEEDED' AND b.accuracy IS NOT NULL
      ORDER BY b.labels ASC NULLS LAST`;
    const order = (a: number | null, b: number | null) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a - b);
    const budgets = [...new Set(cells.map((c) => c.labels))].sort(order);
    const models: LabelCurves['models'] = [];
    for (const key of [...new Set(cells.map((c) => `${c.untrained ? 1 : 0}\u0000${c.modelName}`))]) {
      const own = cells.filter((c) => `${c.untrained ? 1 : 0}\u0000${c.modelName}` === key);
      // Rows come by budget ascending, all last, best first within one: the last budget's first row is the cell.
      const largest = own.at(-1)?.labels ?? null;
      const best = own.find((c) => c.labels === largest);
      if (!best) continue;
      const points = own.filter((c) => c.layer === best.layer && c.noiseLevel === best.noiseLevel && c.baseKey === best.baseKey).map((c) => ({ labels: c.labels, mean: c.mean, std: c.std, n: c.n }));
      models.push({ modelName: best.modelName, untrained: best.untrained, method: best.method, layer: best.layer, noiseLevel: best.noiseLevel, protocolKey: best.baseKey, points });
    }
    return { budgets, models, pixels: pixels.filter((p, i) => pixels.findIndex((q) => q.labels === p.labels) === i) };
  }
}
