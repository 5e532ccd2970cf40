import { Prisma, type PrismaClient } from '../generated/client';

/** One probe result of a sweep with the hyper-parameters that produced it: a row of the export. */
export interface ExportRow {
  sweepId: string;
  sweepName: string;
  dataset: string;
  run: string;
  model: string;
  method: string;
  /** `unet` or `dit`. */
  backbone: string;
  /** The resolved UNet configuration (JSON); null for a DiT. */
  unet: unknown;
  /** The resolved DiT configuration (JSON); null for a UNet. */
  dit: unknown;
  parameters: number | null;
  /** The spec's models[].imageSize; null: the data set's own size padded to a power of two. */
  imageSize: number | null;
  /** Planned pretraining steps (0: the untrained-network control). */
  steps: number;
  batchSize: number | null;
  learningRate: number | null;
  seed: number;
  untrained: boolean;
  layer: string;
  noiseLevel: number;
  pooling: string;
  noiseProtocol: string;
  probeProtocol: string;
  protocolKey: string;
  /** The label budget (labelled training images in total, class-balanced); null: all. */
  labels: number | null;
  accuracy: number;
  trainAccuracy: number | null;
  featureDim: number;
  checkpointStep: number;
  backend: string;
  /** The device that computed it (the WebGPU adapter, else the worker's device); null on results recorded before devices were. */
  device: string | null;
  workerId: string;
  resultId: string;
  createdAt: Date;
  /** An imported model's source file and its sha256; null for a model its sweep pretrained. */
  sourcePath: string | null;
  sourceSha256: string | null;
}

/** The export's order: trained runs then controls, by run, protocol, noise level and layer. */
interface ExportKey {
  untrained: boolean;
  run: string;
  protocolKey: string;
  noiseLevel: number;
  layer: string;
  resultId: string;
}

/** Every result of a sweep, read in keyset batches: memory holds one batch whatever the sweep's size. */
export class ResultsRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Yields the sweep's results (the untrained network's included) in batches of `batchSize`, each
   * batch one indexed query that starts strictly after the last row of the previous one, so no
   * transaction stays open while a slow client reads.
   */
  async *batches(sweepId: string, batchSize = 500): AsyncGenerator<ExportRow[]> {
    let after: ExportKey | null = null;
    for (;;) {
      const rows: ExportRow[] = await this.batch(sweepId, after, batchSize);
      if (rows.length > 0) yield rows;
      if (rows.length < batchSize) return;
      const last = rows[rows.length - 1];
      after = { untrained: last.untrained, run: last.run, protocolKey: last.protocolKey, noiseLevel: last.noiseLevel, layer: last.layer, resultId: last.resultId };
    }
  }

  private batch(sweepId: string, after: ExportKey | null, limit: number): Promise<ExportRow[]> {
    const afterSql = after
      ? Prisma.sql`AND (r.untrained, r.key, pr.protocol_key, pr.noise_level, pr.layer, pr.id) > (${after.untrained}, ${after.run}, ${after.protocolKey}, ${after.noiseLevel}::float8, ${after.layer}, ${after.resultId}::uuid)`
      : Prisma.empty;
    return this.prisma.$queryRaw<ExportRow[]>`
      SELECT pr.sweep_id AS "sweepId", s.name AS "sweepName", pr.dataset, r.key AS run, r.model_name AS model, pr.method,
             CASE WHEN r.dit IS NULL THEN 'unet' ELSE 'dit' END AS backbone, r.unet, r.dit, r.parameters, r.steps, (r.hyper->>'imageSize')::int AS "imageSize", (r.hyper->>'batchSize')::int AS "batchSize", (r.hyper->>'learningRate')::float8 AS "learningRate",
             r.seed, r.untrained, pr.layer, pr.noise_level AS "noiseLevel", pr.pooling, pr.noise_protocol AS "noiseProtocol",
             pr.probe_protocol AS "probeProtocol", pr.protocol_key AS "protocolKey", pr.labels, pr.accuracy, pr.train_accuracy AS "trainAccuracy",
             pr.feature_dim AS "featureDim", c.step AS "checkpointStep", pr.backend, pr.device, pr.worker_id AS "workerId", pr.id AS "resultId",
             pr.created_at AS "createdAt", r.source_path AS "sourcePath", r.source_sha256 AS "sourceSha256"
      FROM probe_results pr
      JOIN runs r ON r.id = pr.run_id
      JOIN checkpoints c ON c.id = pr.checkpoint_id
      JOIN sweeps s ON s.id = pr.sweep_id
      WHERE pr.sweep_id = ${sweepId}::uuid ${afterSql}
      ORDER BY r.untrained, r.key, pr.protocol_key, pr.noise_level, pr.layer, pr.id
      LIMIT ${limit}`;
  }
}
