import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { Request } from 'express';
import type { Observable } from 'rxjs';
import { API_OPERATIONS, type ApiIssue, type ApiOperation } from '@ddae/contracts';
import { ApiError } from './api-error';

/** `GET /api/sweeps/:id` (Express' form of the route) -> its operation in the contract. */
const OPERATIONS = new Map(API_OPERATIONS.map((op) => [`${op.method.toUpperCase()} ${op.path.replace(/\{(\w+)\}/g, ':$1')}`, op]));

export function operationOf(method: string, routePath: string): ApiOperation | undefined {
  return OPERATIONS.get(`${method === 'HEAD' ? 'GET' : method} ${routePath}`);
}

/**
 * The query parameters of a request against its operation's contract: a parameter the operation
 * does not take (`?bogus=1`, `?dataset[]=x`, `?dataset[$ne]=x`) or one given twice
 * (`?dataset=a&dataset=b`) is a 400 naming it, never silently ignored or half-applied.
 */
export function queryIssues(op: ApiOperation, query: Record<string, unknown>): ApiIssue[] {
  const allowed = op.query ? Object.keys(op.query.shape) : [];
  const takes = allowed.length ? `it takes ${allowed.join(', ')}` : 'it takes no query parameters';
  return Object.entries(query).flatMap(([name, value]): ApiIssue[] => {
    if (!allowed.includes(name)) return [{ path: `query.${name}`, message: `unknown query parameter "${name}": ${takes}` }];
    if (Array.isArray(value)) return [{ path: `query.${name}`, message: `"${name}" is given ${value.length} times: give it once` }];
    if (typeof value !== 'string') return [{ path: `query.${name}`, message: `"${name}" must be a plain value` }];
    return [];
  });
}

@Injectable()
export class QueryContractInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request>();
    const route = (req.route as { path?: unknown } | undefined)?.path;
    const op = typeof route === 'string' ? operationOf(req.method, route) : undefined;
    if (op && !op.pageQuery) {
      const issues = queryIssues(op, req.query as Record<string, unknown>);
      if (issues.length) throw new ApiError('invalid_request', `invalid query: ${issues.map((i) => i.path).join(', ')}`, issues);
    }
    return next.handle();
  }
}
