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
