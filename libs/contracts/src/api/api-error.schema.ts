import { z } from 'zod';

/** Error codes the API answers with; each maps to one HTTP status. */
export const API_ERROR_STATUS = {
  invalid_request: 400,
  invalid_spec: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  internal_error: 500,
  service_unavailable: 503,
} as const;
export type ApiErrorCode = keyof typeof API_ERROR_STATUS;
export const API_ERROR_CODES = Object.keys(API_ERROR_STATUS) as ApiErrorCode[];

/** One bad field of a request: its path (e.g. `query.limit`, `pretrain.steps`) and what is wrong. */
export const apiIssueSchema = z.object({ path: z.string(), message: z.string() });
export type ApiIssue = z.infer<typeof apiIssueSchema>;

/** A sweep a short id matches (an ambiguous prefix is a 409 that lists them). */
export const sweepCandidateSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  status: z.string(),
  dataset: z.string(),
  createdAt: z.iso.datetime({ offset: true }),
});

/**
 * The body of every 4xx and 5xx: the status again, a string code, a message for people, for a 400
 * every bad field by path, for a 500 an id to find in the log, for an ambiguous id the candidates.
 */
export const apiErrorSchema = z.object({
  statusCode: z.number().int().min(400).max(599),
  error: z.string().describe(`one of ${API_ERROR_CODES.join(', ')}`),
  message: z.string(),
  issues: z.array(apiIssueSchema).optional(),
  errorId: z.uuid().optional(),
  candidates: z.array(sweepCandidateSchema).optional(),
});
export type ApiErrorBody = z.infer<typeof apiErrorSchema>;

/** `GET /health` when a dependency is down (503): the error shape, with each dependency's state. */
export const healthDownSchema = apiErrorSchema.extend({
  status: z.literal('degraded'),
  postgres: z.enum(['up', 'down']),
  redis: z.enum(['up', 'down']),
});
