import { Prisma } from '../generated/client';
import type { Db } from './types';

/**
 * The leaderboard's summary rows, kept on write: `leaderboard_runs` (each run's best result),
 * `leaderboard_configs` (a model's cell over its seeds, per protocol) and `heatmap_cells` (the same
 * over every protocol). Each is recomputed from its raw rows (a run's results, or one cell's
 * handful of seeds: never the table) by the aggregate the leaderboard used to run over the whole
 * table, and upserted on its natural key only where it differs: a retried job that writes the same
 * results changes no summary row. Means and deviations sum the accuracies in ascending order, so
 * that the same values give the same bits whatever order the rows are read in. Callers hold `lockModelSummaries` for the model first, in the
 * transaction that writes the results, so two seeds of one model finishing at once cannot each
 * miss the other's rows (the second waits, then its statements see the first's commit).
 */

/** What to recompute: a sweep's model (trained runs and its control) and optionally one run, protocol and noise level. */
export interface SummaryScope {
  sweepId: string;
  modelName: string;
  /** Only this run's best (default: every run of the model). */
  runId?: string;
  untrained?: boolean;
  protocolKey?: string;
  noiseLevel?: number;
  /** Only this label budget (null: all); default every budget. */
  labels?: number | null;
}

/**
 * Serialises summary writes of one (sweep, model) until the transaction ends. Take it before
 * writing the model's results; the run row lock, where also taken, comes before it.
 */
export async function lockModelSummaries(tx: Db, sweepId: string, modelName: string): Promise<void> {
  await tx.$queryRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`ddae.summary:${sweepId}:${modelName}`}, 0))::text`;
}

function scopeWhere(scope: SummaryScope): Prisma.Sql {
  const where: Prisma.Sql[] = [Prisma.sql`r.sweep_id = ${scope.sweepId}::uuid`, Prisma.sql`r.model_name = ${scope.modelName}`];
  if (scope.runId !== undefined) where.push(Prisma.sql`r.id = ${scope.runId}::uuid`);
  if (scope.untrained !== undefined) where.push(Prisma.sql`pr.untrained = ${scope.untrained}`);
  if (scope.protocolKey !== undefined) where.push(Prisma.sql`pr.protocol_key = ${scope.protocolKey}`);
  if (scope.noiseLevel !== undefined) where.push(Prisma.sql`pr.noise_level = ${scope.noiseLevel}::float8`);
  if (scope.labels !== undefined) where.push(scope.labels === null ? Prisma.sql`pr.labels IS NULL` : Prisma.sql`pr.labels = ${scope.labels}::int`);
  return Prisma.join(where, ' AND ');
}

/**
 * Linear-probe results only: a run's best and the heatmap (which averages over protocols) never
 * take a fine-tuned number; fine-tuned cells have their own `leaderboard_configs` rows (keyed by
 * their protocol) and stand beside the linear cell there.
 */
const LINEAR = Prisma.sql`pr.probe_protocol <> 'finetune'`;

/** Each run's best result per label budget (accuracy DESC, created_at, id), the `per=run` ranking's DISTINCT ON. */
const runBestSql = (where: Prisma.Sql) => Prisma.sql`
  INSERT INTO leaderboard_runs AS b (run_id, labels, result_id, sweep_id, dataset, method, untrained, accuracy, created_at)
  SELECT DISTINCT ON (pr.run_id, pr.labels) pr.run_id, pr.labels, pr.id, pr.sweep_id, pr.dataset, pr.method, pr.untrained, pr.accuracy, pr.created_at
  FROM probe_results pr JOIN runs r ON r.id = pr.run_id
  WHERE ${where} AND ${LINEAR}
  ORDER BY pr.run_id, pr.labels, pr.accuracy DESC, pr.created_at ASC, pr.id ASC
  ON CONFLICT (run_id, labels) DO UPDATE SET result_id = excluded.result_id, sweep_id = excluded.sweep_id, dataset = excluded.dataset,
    method = excluded.method, untrained = excluded.untrained, accuracy = excluded.accuracy, created_at = excluded.created_at, updated_at = now()
  WHERE (b.result_id, b.sweep_id, b.dataset, b.method, b.untrained, b.accuracy, b.created_at)
    IS DISTINCT FROM (excluded.result_id, excluded.sweep_id, excluded.dataset, excluded.method, excluded.untrained, excluded.accuracy, excluded.created_at)`;

/**
 * Mean and spread over seeds per (sweep, model, control or not, protocol, noise level, layer): the
 * `per=config` ranking's GROUP BY. The protocol key names the label budget, so budgets never mix.
 */
const configSql = (where: Prisma.Sql) => Prisma.sql`
  INSERT INTO leaderboard_configs AS c (sweep_id, model_name, untrained, protocol_key, noise_level, layer, method, dataset,
    noise_protocol, probe_protocol, pooling, labels, mean, std, min, max, n, seeds, parameters)
  SELECT pr.sweep_id, r.model_name, pr.untrained, pr.protocol_key, pr.noise_level, pr.layer, pr.method, pr.dataset,
         pr.noise_protocol, pr.probe_protocol, pr.pooling, pr.labels,
         avg(pr.accuracy ORDER BY pr.accuracy), stddev_samp(pr.accuracy ORDER BY pr.accuracy), min(pr.accuracy), max(pr.accuracy), count(*),
         array_agg(r.seed ORDER BY r.seed), max(r.parameters)
  FROM probe_results pr JOIN runs r ON r.id = pr.run_id
  WHERE ${where}
  GROUP BY pr.sweep_id, r.model_name, pr.untrained, pr.protocol_key, pr.noise_level, pr.layer, pr.method, pr.dataset,
           pr.noise_protocol, pr.probe_protocol, pr.pooling, pr.labels
  ON CONFLICT (sweep_id, model_name, untrained, protocol_key, noise_level, layer) DO UPDATE SET method = excluded.method,
    dataset = excluded.dataset, noise_protocol = excluded.noise_protocol, probe_protocol = excluded.probe_protocol,
    pooling = excluded.pooling, labels = excluded.labels, mean = excluded.mean, std = excluded.std, min = excluded.min, max = excluded.max, n = excluded.n,
    seeds = excluded.seeds, parameters = excluded.parameters, updated_at = now()
  WHERE (c.method, c.dataset, c.noise_protocol, c.probe_protocol, c.pooling, c.labels, c.mean, c.std, c.min, c.max, c.n, c.seeds, c.parameters)
    IS DISTINCT FROM (excluded.method, excluded.dataset, excluded.noise_protocol, excluded.probe_protocol, excluded.pooling, excluded.labels,
      excluded.mean, excluded.std, excluded.min, excluded.max, excluded.n, excluded.seeds, excluded.parameters)`;

/** A sweep's heatmap cell: per (model, control or not, method, layer, noise level, label budget) over seeds and protocols. */
const heatmapSql = (where: Prisma.Sql) => Prisma.sql`
  INSERT INTO heatmap_cells AS h (sweep_id, untrained, model_name, noise_level, layer, method, labels, mean, std, min, max, n)
  SELECT pr.sweep_id, r.untrained, r.model_name, pr.noise_level, pr.layer, pr.method, pr.labels,
         avg(pr.accuracy ORDER BY pr.accuracy), stddev_samp(pr.accuracy ORDER BY pr.accuracy), min(pr.accuracy), max(pr.accuracy), count(*)
  FROM probe_results pr JOIN runs r ON r.id = pr.run_id
  WHERE ${where} AND ${LINEAR}
  GROUP BY pr.sweep_id, r.untrained, r.model_name, pr.noise_level, pr.layer, pr.method, pr.labels
  ON CONFLICT (sweep_id, untrained, model_name, noise_level, layer, method, labels) DO UPDATE SET mean = excluded.mean, std = excluded.std,
    min = excluded.min, max = excluded.max, n = excluded.n, updated_at = now()
  WHERE (h.mean, h.std, h.min, h.max, h.n) IS DISTINCT FROM (excluded.mean, excluded.std, excluded.min, excluded.max, excluded.n)`;

/**
 * Recomputes the summary rows `scope` touches from their raw rows. After a probe task: its run,
 * protocol and noise level (the run's best; every layer's cell at that level over the model's
 * seeds). After a run's parameter count changes: the whole model.
 * @returns how many summary rows changed (0 for a retried job that wrote the same results).
 */
export async function refreshSummaries(tx: Db, scope: SummaryScope): Promise<number> {
  const cells = scopeWhere({ ...scope, runId: undefined });
  const heat = scopeWhere({ ...scope, runId: undefined, protocolKey: undefined });
  const runs = scopeWhere({ sweepId: scope.sweepId, modelName: scope.modelName, runId: scope.runId, untrained: scope.untrained, labels: scope.labels });
  return (await tx.$executeRaw(runBestSql(runs))) + (await tx.$executeRaw(configSql(cells))) + (await tx.$executeRaw(heatmapSql(heat)));
}

/** Every summary row recomputed from every result: the backfill (also prisma/migrations/*_leaderboard_summaries_backfill). */
export async function rebuildSummaries(tx: Db): Promise<number> {
  const all = Prisma.sql`true`;
  return (await tx.$executeRaw(runBestSql(all))) + (await tx.$executeRaw(configSql(all))) + (await tx.$executeRaw(heatmapSql(all)));
}
