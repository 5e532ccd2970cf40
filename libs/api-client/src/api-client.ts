import type { z } from 'zod';
import {
  apiErrorSchema,
  healthSchema,
  heatmapSchema,
  labelCurvesSchema,
  leaderboardSchema,
  lossCurvesSchema,
  generationListSchema,
  progressSchema,
  sampleListSchema,
  sweepCancelledSchema,
  sweepDetailSchema,
  sweepDryRunSchema,
  sweepListSchema,
  sweepPausedSchema,
  sweepRetriedSchema,
  sweepSubmittedSchema,
  verdictSchema,
  workerListSchema,
  type ApiErrorBody,
  type LabelsQuery,
  type LeaderboardQuery,
  type ListSweepsQuery,
} from '@ddae/contracts';

/**
 * A failed call: `status` is the API's HTTP status, 0 when no answer came back; `body` the API's
 * error body; `endpoint` the call (`GET /api/sweeps/<id>/loss`), for a caller that shows which one failed.
 */
export class ApiRequestError extends Error {
  override readonly name = 'ApiRequestError';
  constructor(
    message: string,
    readonly status: number,
    readonly body?: ApiErrorBody,
    readonly endpoint?: string,
  ) {
    super(message);
  }
}

/** An answer that does not match the contract: the API and this client disagree (a bug, or versions apart). `endpoint`: the call. */
export class ApiContractError extends Error {
  override readonly name = 'ApiContractError';
  constructor(
    message: string,
    readonly endpoint?: string,
  ) {
    super(message);
  }
}

export interface ApiClientOptions {
  /** An API token, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Builds the error a failed call throws (default: an ApiRequestError); the CLI makes its own. */
  toError?: (failure: ApiRequestError) => Error;
}

type SubmitBody = { text: string; contentType: 'application/json' | 'application/yaml' } | { json: unknown };

/**
 * The one client of the REST API (CLI, e2e tests, chaos tool): a method per operation, every body it
 * reads parsed with the operation's schema from libs/contracts, and every error body with the one
 * error shape, so a caller never sees an answer it did not expect.
 */
export class ApiClient {
  constructor(
    readonly base: string,
    private readonly options: ApiClientOptions = {},
  ) {}

  health() {
    return this.call(healthSchema, 'GET', '/health');
  }

  /** Submits a spec; `dryRun`: validate and plan only. The answer says whether it was created, replayed or only stored (queued: false). */
  async submitSweep(body: SubmitBody, opts: { idempotencyKey?: string } = {}) {
    const { text, contentType } = 'json' in body ? { text: JSON.stringify(body.json), contentType: 'application/json' } : body;
    return this.call(sweepSubmittedSchema, 'POST', '/api/sweeps', { body: text, contentType, headers: opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {} });
  }

  dryRunSweep(body: SubmitBody) {
    const { text, contentType } = 'json' in body ? { text: JSON.stringify(body.json), contentType: 'application/json' } : body;
    return this.call(sweepDryRunSchema, 'POST', '/api/sweeps?dryRun=true', { body: text, contentType });
  }

  listSweeps(query: ListSweepsQuery = {}) {
    return this.call(sweepListSchema, 'GET', `/api/sweeps${queryString(query)}`);
  }

  getSweep(id: string) {
    return this.call(sweepDetailSchema, 'GET', `/api/sweeps/${encodeURIComponent(id)}`);
  }

  /** `query.labels`: the label budget (`all`, the default, or N labelled images in total). */
  heatmap(id: string, query: LabelsQuery = {}) {
    return this.call(heatmapSchema, 'GET', `/api/sweeps/${encodeURIComponent(id)}/heatmap${queryString(query)}`);
  }

  verdict(id: string, query: LabelsQuery = {}) {
    return this.call(verdictSchema, 'GET', `/api/sweeps/${encodeURIComponent(id)}/verdict${queryString(query)}`);
  }

  /** Accuracy against the number of labels. */
  labelCurves(id: string) {
    return this.call(labelCurvesSchema, 'GET', `/api/sweeps/${encodeURIComponent(id)}/labels`);
  }

  loss(id: string) {
    return this.call(lossCurvesSchema, 'GET', `/api/sweeps/${encodeURIComponent(id)}/loss`);
  }

  /** FID and KID of the sweep's runs (when its spec asked for `pretrain.fid`). */
  generation(id: string) {
    return this.call(generationListSchema, 'GET', `/api/sweeps/${encodeURIComponent(id)}/generation`);
  }

  samples(id: string) {
    return this.call(sampleListSchema, 'GET', `/api/sweeps/${encodeURIComponent(id)}/samples`);
  }

  progress(id: string) {
    return this.call(progressSchema, 'GET', `/api/sweeps/${encodeURIComponent(id)}/progress`);
  }

  pause(id: string) {
    return this.call(sweepPausedSchema, 'POST', `/api/sweeps/${encodeURIComponent(id)}/pause`);
  }

  resume(id: string) {
    return this.call(sweepPausedSchema, 'POST', `/api/sweeps/${encodeURIComponent(id)}/resume`);
  }

  retryFailed(id: string) {
    return this.call(sweepRetriedSchema, 'POST', `/api/sweeps/${encodeURIComponent(id)}/retry-failed`);
  }

  cancel(id: string) {
    return this.call(sweepCancelledSchema, 'POST', `/api/sweeps/${encodeURIComponent(id)}/cancel`);
  }

  leaderboard(query: LeaderboardQuery = {}) {
    return this.call(leaderboardSchema, 'GET', `/api/leaderboard${queryString(query)}`);
  }

  workers() {
    return this.call(workerListSchema, 'GET', '/api/workers');
  }

  /** A run's sample grid (PNG bytes). */
  async samplePng(id: string, run: string): Promise<Buffer> {
    const response = await this.stream(`/api/sweeps/${encodeURIComponent(id)}/runs/${encodeURIComponent(run)}/samples.png`);
    return Buffer.from(await response.arrayBuffer());
  }

  /** A sweep's results, streamed (CSV or JSON lines): the caller reads the body. */
  results(id: string, format: 'csv' | 'jsonl'): Promise<Response> {
    return this.stream(`/api/sweeps/${encodeURIComponent(id)}/results.${format}`);
  }

  /** A GET whose body the caller reads (PNGs, exports, the event stream); a failure is thrown like a call's. */
  async stream(path: string, headers: Record<string, string> = {}): Promise<Response> {
    const response = await this.send('GET', path, { headers });
    if (response.ok) return response;
    throw await this.failure(response, `GET ${path}`);
  }

  /** One call: its answer parsed with `schema`, or the API's error thrown. */
  async call<S extends z.ZodType>(schema: S, method: 'GET' | 'POST', path: string, options: { body?: string; contentType?: string; headers?: Record<string, string> } = {}): Promise<z.output<S>> {
    const response = await this.send(method, path, options);
    if (!response.ok) throw await this.failure(response, `${method} ${path}`);
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiContractError(`${method} ${path} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`, `${method} ${path}`);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      throw new ApiContractError(
        `${method} ${path} answered a body this client does not understand (API and client versions apart?): ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
        `${method} ${path}`,
      );
    }
    return parsed.data;
  }

  private async send(method: string, path: string, options: { body?: string; contentType?: string; headers?: Record<string, string> }): Promise<Response> {
    try {
      return await fetch(new URL(path, this.base), {
        method,
        body: options.body,
        headers: {
          ...(options.contentType ? { 'content-type': options.contentType } : {}),
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
          ...options.headers,
        },
      });
    } catch (error) {
      const cause = (error as Error).cause ?? (error as Error).message;
      throw this.error(new ApiRequestError(`cannot reach the API at ${this.base} (${String(cause)})`, 0, undefined, `${method} ${path}`));
    }
  }

  private async failure(response: Response, endpoint: string): Promise<Error> {
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const parsed = apiErrorSchema.safeParse(json);
    if (!parsed.success) return this.error(new ApiRequestError(`${response.status} ${text.slice(0, 200) || response.statusText}`, response.status, undefined, endpoint));
    const body = parsed.data;
    const issues = body.issues?.map((i) => `  ${i.path || '(document)'}: ${i.message}`).join('\n');
    // An ambiguous short id: one candidate per line, to pick from.
    const candidates = body.candidates?.length ? `\n${body.candidates.map((c) => `  ${c.id}  ${c.name}  ${c.status}  ${c.createdAt}`).join('\n')}` : '';
    const message = body.candidates?.length ? `the id matches ${body.candidates.length} sweeps; give more of it:` : body.message;
    return this.error(new ApiRequestError(`${response.status} ${message}${issues ? `\n${issues}` : ''}${candidates}`, response.status, body, endpoint));
  }

  private error(failure: ApiRequestError): Error {
    return this.options.toError ? this.options.toError(failure) : failure;
  }
}

/** `?a=1&b=2` of the defined values of a query object; empty when there are none. */
function queryString(query: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') q.set(key, String(value));
  return q.size ? `?${q}` : '';
}
