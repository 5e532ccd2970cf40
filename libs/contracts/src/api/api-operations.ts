import type { z } from 'zod';
import { healthDownSchema } from './api-error.schema';
import { labelsQuerySchema, leaderboardQuerySchema, listSweepsQuerySchema, submitSweepQuerySchema, sweepEventsQuerySchema } from './api-query.schema';
import {
  healthSchema,
  heatmapSchema,
  labelCurvesSchema,
  leaderboardSchema,
  lossCurvesSchema,
  progressSchema,
  sampleListSchema,
  generationListSchema,
  sweepCancelledSchema,
  sweepDetailSchema,
  sweepDryRunSchema,
  sweepListSchema,
  sweepPausedSchema,
  sweepRetriedSchema,
  sweepSubmittedSchema,
  verdictSchema,
  workerListSchema,
} from './api-response.schema';

/** Who may call an operation: `public` always; `read` anyone unless API_AUTH=all; `submit` a token of scope submit (unless API_AUTH=off). */
export type OperationScope = 'public' | 'read' | 'submit';

/** A response: a JSON body with its schema, or another media type (a PNG, CSV, an event stream). */
export type OperationResponse =
  | { description: string; schema: z.ZodType; name: string }
  | { description: string; mediaType: string; binary?: boolean }
  | { description: string; empty: true };

/**
 * One operation of the REST API: its route, parameters and every response, errors included. The
 * OpenAPI document is generated from this table, the API's routes are checked against it, and the
 * client library reads each response with the schema named here.
 */
export interface ApiOperation {
  operationId: string;
  method: 'get' | 'post';
  /** OpenAPI form: `/api/sweeps/{id}`. */
  path: string;
  tag: 'sweeps' | 'leaderboard' | 'workers' | 'health' | 'page';
  summary: string;
  scope: OperationScope;
  pathParams?: Record<string, string>;
  query?: z.ZodObject;
  /** The query string belongs to the page's script (a permalink: sweep, dataset, method, board, per, limit, sort); the server reads none of it. */
  pageQuery?: true;
  headers?: { name: string; description: string }[];
  /** The request body: a sweep spec, as JSON or YAML. */
  body?: 'sweep-spec';
  responses: Record<number, OperationResponse>;
  /** The error statuses this operation answers with (each with the one error shape); 401 and 403 (any scope but public) and 500 are added. */
  errors: number[];
}

const json = (name: string, schema: z.ZodType, description: string): OperationResponse => ({ name, schema, description });
const SWEEP_ID = { id: 'the sweep id, or a unique prefix of at least 8 hex digits (the short id the tables show)' };
/** A path with a sweep id: 400 a malformed id, 404 no such sweep, 409 a prefix several sweeps share. */
const BY_ID = [400, 404, 409];

export const API_OPERATIONS: readonly ApiOperation[] = [
  {
    operationId: 'webPage',
    method: 'get',
    path: '/',
    tag: 'page',
    summary: 'The web page: the leaderboard, sweeps and heatmaps, reading this API',
    scope: 'public',
    responses: { 200: { description: 'the page', mediaType: 'text/html' } },
    pageQuery: true,
    errors: [],
  },
  {
    operationId: 'health',
    method: 'get',
    path: '/health',
    tag: 'health',
    summary: 'Liveness and dependencies: 200 when Postgres and Redis answer, else 503 naming what is down',
    scope: 'public',
    responses: { 200: json('Health', healthSchema, 'Postgres and Redis answer'), 503: json('HealthDown', healthDownSchema, 'a dependency is down (named in message)') },
    errors: [],
  },
  {
    operationId: 'metrics',
    method: 'get',
    path: '/metrics',
    tag: 'health',
    summary: 'Prometheus metrics: queue depth by state, reconciler actions, HTTP latency by route (names in the README)',
    scope: 'public',
    responses: { 200: { description: "Prometheus' text exposition format", mediaType: 'text/plain; version=0.0.4' } },
    errors: [],
  },
  {
    operationId: 'submitSweep',
    method: 'post',
    path: '/api/sweeps',
    tag: 'sweeps',
    summary: 'Submit a sweep spec (JSON, or YAML with Content-Type: application/yaml)',
    scope: 'submit',
    query: submitSweepQuerySchema,
    headers: [{ name: 'Idempotency-Key', description: 'A retried POST with the same key returns the same sweep and enqueues nothing' }],
    body: 'sweep-spec',
    responses: {
      201: json('SweepSubmitted', sweepSubmittedSchema, 'stored and queued'),
      202: json('SweepSubmitted', sweepSubmittedSchema, 'stored, not queued: Redis is unreachable and the reconciler queues it (queued: false, note says why)'),
      200: json('SweepSubmittedOrDryRun', sweepSubmittedSchema.or(sweepDryRunSchema), 'dryRun=true: the plan, nothing stored; or a replay of an earlier submission with this Idempotency-Key'),
    },
    errors: [400, 409, 413, 415],
  },
  {
    operationId: 'listSweeps',
    method: 'get',
    path: '/api/sweeps',
    tag: 'sweeps',
    summary: 'List sweeps, newest first',
    scope: 'read',
    query: listSweepsQuerySchema,
    responses: { 200: json('SweepList', sweepListSchema, 'the sweeps, newest first') },
    errors: [400],
  },
  {
    operationId: 'getSweep',
    method: 'get',
    path: '/api/sweeps/{id}',
    tag: 'sweeps',
    summary: 'A sweep: status, progress, its runs, probe tasks and baselines (with the reason of each failure)',
    scope: 'read',
    pathParams: SWEEP_ID,
    responses: { 200: json('SweepDetail', sweepDetailSchema, 'the sweep') },
    errors: BY_ID,
  },
  {
    operationId: 'sweepHeatmap',
    method: 'get',
    path: '/api/sweeps/{id}/heatmap',
    tag: 'sweeps',
    summary: 'Mean accuracy per (model, layer, noise level) of a sweep, over seeds, at one label budget',
    scope: 'read',
    pathParams: SWEEP_ID,
    query: labelsQuerySchema,
    responses: { 200: json('Heatmap', heatmapSchema, 'every cell with its spread over seeds') },
    errors: BY_ID,
  },
  {
    operationId: 'sweepVerdict',
    method: 'get',
    path: '/api/sweeps/{id}/verdict',
    tag: 'sweeps',
    summary: "The trained models' best cell (mean over seeds) beside the raw-pixel baseline and the untrained network's best cell, under the same probe protocol and label budget, with both margins",
    scope: 'read',
    pathParams: SWEEP_ID,
    query: labelsQuerySchema,
    responses: { 200: json('Verdict', verdictSchema, 'the verdict') },
    errors: BY_ID,
  },
  {
    operationId: 'sweepLabelCurves',
    method: 'get',
    path: '/api/sweeps/{id}/labels',
    tag: 'sweeps',
    summary: 'Accuracy against the number of labels: per model and untrained control its best cell at the largest budget (mean over seeds) at every budget, and the raw-pixel baseline at every budget',
    scope: 'read',
    pathParams: SWEEP_ID,
    responses: { 200: json('LabelCurves', labelCurvesSchema, 'accuracy against labels') },
    errors: BY_ID,
  },
  {
    operationId: 'sweepLoss',
    method: 'get',
    path: '/api/sweeps/{id}/loss',
    tag: 'sweeps',
    summary: 'Training loss against step per trained run: each point the mean loss over the window of steps ending there',
    scope: 'read',
    pathParams: SWEEP_ID,
    responses: { 200: json('LossCurves', lossCurvesSchema, 'the loss curves') },
    errors: BY_ID,
  },
  {
    operationId: 'sweepSamples',
    method: 'get',
    path: '/api/sweeps/{id}/samples',
    tag: 'sweeps',
    summary: "Sample grids of the sweep's trained runs (one per final checkpoint); each PNG at its url",
    scope: 'read',
    pathParams: SWEEP_ID,
    responses: { 200: json('SampleList', sampleListSchema, 'the sample grids') },
    errors: BY_ID,
  },
  {
    operationId: 'sweepGeneration',
    method: 'get',
    path: '/api/sweeps/{id}/generation',
    tag: 'sweeps',
    summary: "Generation quality of the sweep's runs (FID and KID against the test split, named by their feature extractor), apart from probe accuracy",
    scope: 'read',
    pathParams: SWEEP_ID,
    responses: { 200: json('GenerationList', generationListSchema, 'FID and KID per run and checkpoint') },
    errors: BY_ID,
  },
  {
    operationId: 'sweepSamplePng',
    method: 'get',
    path: '/api/sweeps/{id}/runs/{run}/samples.png',
    tag: 'sweeps',
    summary: "A run's sample grid (PNG) of its final checkpoint",
    scope: 'read',
    pathParams: { ...SWEEP_ID, run: "the run's id or key" },
    headers: [{ name: 'If-None-Match', description: 'the ETag of a copy held: 304 when it is still the latest' }],
    responses: { 200: { description: 'the PNG', mediaType: 'image/png', binary: true }, 304: { description: 'the copy held is the latest', empty: true } },
    errors: BY_ID,
  },
  {
    operationId: 'sweepProgress',
    method: 'get',
    path: '/api/sweeps/{id}/progress',
    tag: 'sweeps',
    summary: 'Probing during pretraining: accuracy against step per run (each probed step: its best and every cell), and where a plateau stopped it',
    scope: 'read',
    pathParams: SWEEP_ID,
    responses: { 200: json('Progress', progressSchema, 'accuracy against step per run') },
    errors: BY_ID,
  },
  {
    operationId: 'sweepEvents',
    method: 'get',
    path: '/api/sweeps/{id}/events',
    tag: 'sweeps',
    summary: 'Server-Sent Events of a sweep, replayed from Postgres after Last-Event-ID; the stream ends once the sweep is finished',
    scope: 'read',
    pathParams: SWEEP_ID,
    query: sweepEventsQuerySchema,
    headers: [{ name: 'Last-Event-ID', description: 'Resume after this event id' }],
    responses: { 200: { description: 'the event stream', mediaType: 'text/event-stream' } },
    errors: BY_ID,
  },
  {
    operationId: 'sweepResultsCsv',
    method: 'get',
    path: '/api/sweeps/{id}/results.csv',
    tag: 'sweeps',
    summary: 'Every result of a sweep with its hyper-parameters, as CSV (streamed)',
    scope: 'read',
    pathParams: SWEEP_ID,
    responses: { 200: { description: 'one row per probe result', mediaType: 'text/csv' } },
    errors: BY_ID,
  },
  {
    operationId: 'sweepResultsJsonl',
    method: 'get',
    path: '/api/sweeps/{id}/results.jsonl',
    tag: 'sweeps',
    summary: 'Every result of a sweep with its hyper-parameters, one JSON object per line (streamed)',
    scope: 'read',
    pathParams: SWEEP_ID,
    responses: { 200: { description: 'one JSON object per line', mediaType: 'application/x-ndjson' } },
    errors: BY_ID,
  },
  {
    operationId: 'pauseSweep',
    method: 'post',
    path: '/api/sweeps/{id}/pause',
    tag: 'sweeps',
    summary: 'Pause a sweep: nothing new of it starts, running jobs finish',
    scope: 'submit',
    pathParams: SWEEP_ID,
    responses: { 200: json('SweepPaused', sweepPausedSchema, 'paused') },
    errors: BY_ID,
  },
  {
    operationId: 'resumeSweep',
    method: 'post',
    path: '/api/sweeps/{id}/resume',
    tag: 'sweeps',
    summary: 'Resume a paused sweep',
    scope: 'submit',
    pathParams: SWEEP_ID,
    responses: { 200: json('SweepPaused', sweepPausedSchema, 'resumed') },
    errors: BY_ID,
  },
  {
    operationId: 'retryFailed',
    method: 'post',
    path: '/api/sweeps/{id}/retry-failed',
    tag: 'sweeps',
    summary: 'Rerun exactly the failed runs, probe tasks and baselines of a sweep (409 for a cancelled sweep)',
    scope: 'submit',
    pathParams: SWEEP_ID,
    responses: { 200: json('SweepRetried', sweepRetriedSchema, 'what was sent again') },
    errors: BY_ID,
  },
  {
    operationId: 'cancelSweep',
    method: 'post',
    path: '/api/sweeps/{id}/cancel',
    tag: 'sweeps',
    summary: 'Cancel a sweep: queued work is dropped, running jobs stop within seconds',
    scope: 'submit',
    pathParams: SWEEP_ID,
    responses: { 200: json('SweepCancelled', sweepCancelledSchema, 'cancelled') },
    errors: BY_ID,
  },
  {
    operationId: 'leaderboard',
    method: 'get',
    path: '/api/leaderboard',
    tag: 'leaderboard',
    summary: 'Best probe results, by accuracy, with the baselines of the same data sets. Paged: `nextCursor` (null on the last page) continues the ranking with the same filter.',
    scope: 'read',
    query: leaderboardQuerySchema,
    responses: { 200: json('Leaderboard', leaderboardSchema, 'one page of the ranking') },
    errors: [400, 404, 409],
  },
  {
    operationId: 'listWorkers',
    method: 'get',
    path: '/api/workers',
    tag: 'workers',
    summary: 'Workers that sent a heartbeat recently',
    scope: 'read',
    responses: { 200: json('WorkerList', workerListSchema, 'the live workers') },
    errors: [400],
  },
];

