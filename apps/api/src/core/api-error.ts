import type { SpecIssue } from '@ddae/sweeps';

/** Error codes the API answers with; each maps to one HTTP status in the error filter. */
export type ApiErrorCode = 'invalid_request' | 'invalid_spec' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict' | 'payload_too_large' | 'unsupported_media_type';

export const STATUS_OF: Record<ApiErrorCode, number> = {
  invalid_request: 400,
  invalid_spec: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
};

/** A domain error: a string code, a message for people, and for 400s every bad field by path. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly issues?: SpecIssue[],
    /** Machine-readable details added to the error body (e.g. the candidates of an ambiguous id). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}
