import type { SpecIssue } from '@ddae/sweeps';
import { API_ERROR_STATUS, type ApiErrorCode as WireErrorCode } from '@ddae/contracts';

/** Error codes a handler throws; each maps to one HTTP status (libs/contracts' API_ERROR_STATUS). */
export type ApiErrorCode = Exclude<WireErrorCode, 'internal_error' | 'service_unavailable' | 'method_not_allowed'>;

export const STATUS_OF: Record<ApiErrorCode, number> = API_ERROR_STATUS;

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
