import { DATASET_SHAPES, paddedImageSize, type DatasetName } from '@ddae/contracts';
import type { ExportRow } from '@ddae/db';

/** The export's columns, in order: CSV header names and how each is read from a row. */
export const EXPORT_COLUMNS: readonly [string, (r: ExportRow) => unknown][] = [
  ['sweep_id', (r) => r.sweepId],
  ['sweep', (r) => r.sweepName],
  ['dataset', (r) => r.dataset],
  ['run', (r) => r.run],
  ['model', (r) => r.model],
  ['method', (r) => r.method],
  ['untrained', (r) => r.untrained],
  ['backbone', (r) => r.backbone],
  ['unet', (r) => (r.unet === null ? null : JSON.stringify(r.unet))],
  ['dit', (r) => (r.dit === null ? null : JSON.stringify(r.dit))],
  ['parameters', (r) => r.parameters],
  // The side of the model's input: the spec's imageSize, else the data set's padded to a power of two (28 -> 32).
  ['image_size', (r) => r.imageSize ?? (r.dataset in DATASET_SHAPES ? paddedImageSize(DATASET_SHAPES[r.dataset as DatasetName].size) : null)],
  ['steps', (r) => r.steps],
  ['batch_size', (r) => r.batchSize],
  ['learning_rate', (r) => r.learningRate],
  ['seed', (r) => r.seed],
  ['layer', (r) => r.layer],
  ['noise_level', (r) => r.noiseLevel],
  ['pooling', (r) => r.pooling],
  ['noise_protocol', (r) => r.noiseProtocol],
  ['probe_protocol', (r) => r.probeProtocol],
  ['protocol_key', (r) => r.protocolKey],
  // The label budget: labelled training images in total (class-balanced), or `all`.
  ['labels', (r) => r.labels ?? 'all'],
  ['accuracy', (r) => r.accuracy],
  ['train_accuracy', (r) => r.trainAccuracy],
  ['feature_dim', (r) => r.featureDim],
  ['checkpoint_step', (r) => r.checkpointStep],
  ['backend', (r) => r.backend],
  ['device', (r) => r.device],
  ['worker', (r) => r.workerId],
  ['result_id', (r) => r.resultId],
  ['created_at', (r) => r.createdAt.toISOString()],
  // An imported model's provenance (models[].checkpoint); empty for a model its sweep pretrained.
  ['source_path', (r) => r.sourcePath],
  ['source_sha256', (r) => r.sourceSha256],
];

/** One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; null is empty. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const csvHeader = (): string => `${EXPORT_COLUMNS.map(([name]) => name).join(',')}\r\n`;

export const csvRow = (r: ExportRow): string => `${EXPORT_COLUMNS.map(([, get]) => csvField(get(r))).join(',')}\r\n`;

/** One JSON object per line, with the CSV's columns (the UNet or DiT as an object). */
export const jsonlRow = (r: ExportRow): string =>
  `${JSON.stringify(Object.fromEntries(EXPORT_COLUMNS.map(([name, get]) => [name, name === 'unet' ? r.unet : name === 'dit' ? r.dit : get(r)])))}\n`;
