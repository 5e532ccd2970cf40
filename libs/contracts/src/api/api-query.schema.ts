import { z } from 'zod';
import { DATASET_NAMES, METHODS } from '../sweep-spec.schema';

export const SWEEP_STATUSES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type SweepStatusName = (typeof SWEEP_STATUSES)[number];
export const TASK_STATUSES = SWEEP_STATUSES;

/**
 * Query strings are strict objects: an unknown parameter (`?bogus=1`, `?dataset[]=x`,
 * `?dataset[$ne]=x`) is a 400 naming it, never silently ignored.
 */
export const submitSweepQuerySchema = z.strictObject({
  dryRun: z.enum(['true', 'false']).optional().describe('true: validate and plan, store nothing'),
});

export const listSweepsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50).describe('sweeps per page, 1..200'),
  status: z.enum(SWEEP_STATUSES).optional().describe('only sweeps in this status'),
  before: z.iso.datetime().optional().describe('only sweeps created before this instant (the createdAt of the last sweep of the previous page)'),
});

/**
 * `?labels=N|all`: the label budget whose results to read (labelled training images in total,
 * class-balanced, as the spec's probe.labels counts them); default all. Numbers at different budgets
 * never mix.
 */
const labelsParam = z
  .string()
  .regex(/^(all|[1-9][0-9]{0,8})$/, 'all, or a label budget: a positive whole number of labelled images (in total)')
  .default('all')
  .describe("label budget: `all` (default) or N, the labelled training images in total (class-balanced) of the sweep's probe.labels");

/** A `labels` query value as the repositories take it: null for all, else the count. */
export function labelsFromQuery(value: string | undefined): number | null {
  return value === undefined || value === 'all' ? null : Number(value);
}

/** `?labels=` of the heatmap and verdict. */
export const labelsQuerySchema = z.strictObject({ labels: labelsParam });

export const LEADERBOARD_PER = ['cell', 'run', 'config'] as const;
export const leaderboardQuerySchema = z.strictObject({
  dataset: z.enum(DATASET_NAMES).optional(),
  method: z.enum(METHODS).optional(),
  sweep: z.string().optional().describe('sweep id, or a unique prefix of at least 8 hex digits'),
  per: z
    .enum(LEADERBOARD_PER)
    .default('cell')
    .describe("cell: every result; run: each run's best cell; config: mean and spread over seeds per (model, layer, noise, protocol)"),
  limit: z.coerce.number().int().min(1).max(500).default(20).describe('rows per page, 1..500'),
  cursor: z.string().min(1).max(2000).optional().describe('the nextCursor of the previous page (same filter)'),
  labels: labelsParam,
  protocol: z
    .enum(['linear', 'finetune'])
    .default('linear')
    .describe('linear (default): the linear probes\' results; finetune: fine-tuned cells (probe.finetune). Never ranked together; per=run ranks linear results only'),
});

export const sweepEventsQuerySchema = z.strictObject({
  after: z.string().regex(/^\d{1,18}$/, 'an event id (digits)').optional().describe('Same as Last-Event-ID, for clients that cannot set headers'),
});

/** A query without parameters: any parameter is a 400. */
export const noQuerySchema = z.strictObject({});

/** What a client sends: every parameter optional, numbers as numbers or their text. */
type QueryInput<S extends z.ZodObject> = { [K in keyof z.output<S>]?: Exclude<z.output<S>[K], undefined> extends number ? number | string : z.output<S>[K] };
export type ListSweepsQuery = QueryInput<typeof listSweepsQuerySchema>;
export type LeaderboardQuery = QueryInput<typeof leaderboardQuerySchema>;
export type LabelsQuery = QueryInput<typeof labelsQuerySchema>;
