import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import { API_ERROR_CODES, API_ERROR_STATUS, apiErrorSchema, type ApiErrorBody } from '@ddae/contracts';
import { ApiError, STATUS_OF } from './api-error';

/** The one error shape of every 4xx and 5xx (libs/contracts' apiErrorSchema). */
export type ErrorBody = ApiErrorBody;

/**
 * Translates every error in one place: domain errors keep their code and issues, Nest's HTTP
 * exceptions their status, and anything else becomes a 500 with an error id to find in the log
 * and no internals in the body.
 */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const body = toErrorBody(exception, this.logger);
    response.status(body.statusCode).json(wireErrorBody(body, this.logger));
  }
}

/** The error body in its wire form, checked against the one error shape; a body that is not is itself a bug (a 500). */
export function wireErrorBody(body: ErrorBody, logger: Logger): ErrorBody {
  const parsed = apiErrorSchema.safeParse(JSON.parse(JSON.stringify(body)));
  if (parsed.success) return parsed.data;
  return toErrorBody(new Error(`error body of status ${body.statusCode} does not match its contract: ${parsed.error.message}`), logger);
}

export function toErrorBody(exception: unknown, logger: Logger): ErrorBody {
  if (exception instanceof ApiError) {
    return {
      ...exception.details,
      statusCode: STATUS_OF[exception.code],
      error: exception.code,
      message: exception.message,
      ...(exception.issues ? { issues: exception.issues } : {}),
    };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const res = exception.getResponse();
    const message = typeof res === 'string' ? res : ((res as { message?: unknown }).message ?? exception.message);
    return { statusCode: status, error: httpErrorName(status), message: Array.isArray(message) ? message.join('; ') : String(message) };
  }
  // body-parser's errors carry an HTTP status and a type (entity.too.large, entity.parse.failed...)
  const parserError = exception as { status?: number; type?: string; message?: string };
  if (typeof parserError?.status === 'number' && parserError.status >= 400 && parserError.status < 500 && parserError.type) {
    const message = parserError.type === 'entity.parse.failed' ? `malformed body: ${parserError.message}` : (parserError.message ?? 'bad request');
    return { statusCode: parserError.status, error: httpErrorName(parserError.status), message };
  }
  const errorId = randomUUID();
  logger.error(`error ${errorId}: ${exception instanceof Error ? (exception.stack ?? exception.message) : String(exception)}`);
  return { statusCode: 500, error: 'internal_error', message: 'internal error', errorId };
}

function httpErrorName(status: number): string {
  const code = API_ERROR_CODES.find((c) => API_ERROR_STATUS[c] === status);
  return code ?? (status >= 500 ? 'internal_error' : 'error');
}
