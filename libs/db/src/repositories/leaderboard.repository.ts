import { Prisma, type PrismaClient } from '../generated/client';

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
}

export interface LeaderboardRow {
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
  backend: string;
  createdAt: Date;
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
  backend: string;
}

export interface HeatmapCell {
  modelName: string;
  method: string;
  layer: string;
  noiseLevel: number;
  mean: number;
  std: number | null;
  min: number;
  max: number;
  n: number;
}

/**
 * The leaderboard as reviewed SQL. Sorting and every filter run on probe_results alone, whose
 * (filter, accuracy DESC) indexes turn "top N" into an index scan at any table size; the joins then
 * touch only the N rows returned.
 */
export class LeaderboardRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async top(filter: LeaderboardFilter): Promise<LeaderboardRow[]> {
    const limit = Math.min(Math.max(filter.limit ?? 20, 1), 500);
    // Untrained-network controls are baselines, listed beside the ranking, never in it.
    const where: Prisma.Sql[] = [Prisma.sql`pr.untrained = false`];
    if (filter.dataset) where.push(Prisma.sql`pr.dataset = ${filter.dataset}`);
    if (filter.method) where.push(Prisma.sql`pr.method = ${filter.method}`);
    if (filter.sweepId) where.push(Prisma.sql`pr.sweep_id = ${filter.sweepId}::uuid`);
    const whereSql = Prisma.sql`WHERE ${Prisma.join(where, ' AND ')}`;
    const top =
      filter.per === 'run'
        ? Prisma.sql`
          SELECT * FROM (
            SELECT DISTINCT ON (pr.run_id) pr.* FROM probe_results pr ${whereSql}
            ORDER BY pr.run_id, pr.accuracy DESC, pr.created_at ASC
          ) best ORDER BY best.accuracy DESC, best.created_at ASC LIMIT ${limit}`
        : Prisma.sql`SELECT pr.* FROM probe_results pr ${whereSql} ORDER BY pr.accuracy DESC, pr.created_at ASC LIMIT ${limit}`;
    return this.prisma.$queryRaw<LeaderboardRow[]>`
      WITH top AS (${top})
      SELECT top.accuracy, top.layer, top.noise_level AS "noiseLevel", top.method, top.dataset,
             r.model_name AS "modelName", r.key AS "runKey", r.seed, r.parameters,
             c.step, top.sweep_id AS "sweepId", s.name AS "sweepName", top.run_id AS "runId",
             top.checkpoint_id AS "checkpointId", top.protocol_key AS "protocolKey",
             top.noise_protocol AS "noiseProtocol", top.probe_protocol AS "probeProtocol", top.pooling,
             top.backend, top.created_at AS "createdAt"
      FROM top
      JOIN runs r ON r.id = top.run_id
      JOIN checkpoints c ON c.id = top.checkpoint_id
      JOIN sweeps s ON s.id = top.sweep_id
      ORDER BY top.accuracy DESC, top.created_at ASC`;
  }

  /**
   * Mean and spread over seeds: the runs of one sweep that share a model (same name, hence same
   * config and hyper-parameters) are grouped per (layer, noise level, protocol), ranked by mean.
   */
  async topByConfig(filter: LeaderboardFilter): Promise<LeaderboardConfigRow[]> {
    const limit = Math.min(Math.max(filter.limit ?? 20, 1), 500);
    const where: Prisma.Sql[] = [Prisma.sql`pr.untrained = false`];
    if (filter.dataset) where.push(Prisma.sql`pr.dataset = ${filter.dataset}`);
    if (filter.method) where.push(Prisma.sql`pr.method = ${filter.method}`);
    if (filter.sweepId) where.push(Prisma.sql`pr.sweep_id = ${filter.sweepId}::uuid`);
    const rows = await this.prisma.$queryRaw<(Omit<LeaderboardConfigRow, 'n'> & { n: bigint })[]>`
      SELECT avg(pr.accuracy) AS mean, stddev_samp(pr.accuracy) AS std, min(pr.accuracy) AS min, max(pr.accuracy) AS max,
             count(*) AS n, array_agg(r.seed ORDER BY r.seed) AS seeds,
             pr.layer, pr.noise_level AS "noiseLevel", pr.method, pr.dataset, r.model_name AS "modelName",
             max(r.parameters) AS parameters, pr.sweep_id AS "sweepId", s.name AS "sweepName",
             pr.protocol_key AS "protocolKey", pr.noise_protocol AS "noiseProtocol", pr.probe_protocol AS "probeProtocol", pr.pooling
      FROM probe_results pr
      JOIN runs r ON r.id = pr.run_id
      JOIN sweeps s ON s.id = pr.sweep_id
      WHERE ${Prisma.join(where, ' AND ')}
      GROUP BY pr.sweep_id, s.name, r.model_name, pr.method, pr.dataset, pr.layer, pr.noise_level,
               pr.protocol_key, pr.noise_protocol, pr.probe_protocol, pr.pooling
      ORDER BY mean DESC, count(*) DESC, r.model_name, pr.layer, pr.noise_level
      LIMIT ${limit}`;
    return rows.map((r) => ({ ...r, n: Number(r.n) }));
  }

  /**
   * The untrained-network baseline: per data set and method, its best probe cell (restricted to
   * one sweep when given), to stand beside the trained models' ranking.
   */
  async untrainedBest(datasets: string[], sweepId?: string): Promise<UntrainedBaselineRow[]> {
    if (datasets.length === 0) return [];
    const sweep = sweepId ? Prisma.sql`AND pr.sweep_id = ${sweepId}::uuid` : Prisma.empty;
    return this.prisma.$queryRaw<UntrainedBaselineRow[]>`
      SELECT DISTINCT ON (pr.dataset, pr.method)
             pr.dataset, pr.method, pr.accuracy, pr.layer, pr.noise_level AS "noiseLevel",
             pr.feature_dim AS "featureDim", pr.protocol_key AS "protocolKey", r.model_name AS "modelName", pr.backend
      FROM probe_results pr JOIN runs r ON r.id = pr.run_id
      WHERE pr.untrained AND pr.dataset IN (${Prisma.join(datasets)}) ${sweep}
      ORDER BY pr.dataset, pr.method, pr.accuracy DESC, pr.created_at ASC`;
  }

  /** Mean and spread over seeds of every (model, layer, noise level) cell of one sweep. */
  async heatmap(sweepId: string): Promise<HeatmapCell[]> {
    const rows = await this.prisma.$queryRaw<(Omit<HeatmapCell, 'n'> & { n: bigint })[]>`
      SELECT r.model_name || CASE WHEN r.untrained THEN ' (untrained)' ELSE '' END AS "modelName",
             pr.method, pr.layer, pr.noise_level AS "noiseLevel",
             avg(pr.accuracy) AS mean, stddev_samp(pr.accuracy) AS std,
             min(pr.accuracy) AS min, max(pr.accuracy) AS max, count(*) AS n
      FROM probe_results pr JOIN runs r ON r.id = pr.run_id
      WHERE pr.sweep_id = ${sweepId}::uuid
      GROUP BY r.model_name, r.untrained, pr.method, pr.layer, pr.noise_level
      ORDER BY r.untrained, r.model_name, pr.noise_level, pr.layer`;
    return rows.map((r) => ({ ...r, n: Number(r.n) }));
  }
}
