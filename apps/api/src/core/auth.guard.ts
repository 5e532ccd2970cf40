import { Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import type { ApiEnv } from '@ddae/config';
import { scopeAllows, TokenRepository, type TokenScope } from '@ddae/db';
import { ApiError } from './api-error';
import { API_ENV } from './tokens';

const SCOPE_KEY = 'ddae:scope';

/** The token scope a handler needs; handlers without one are reads (`read`). */
export const RequireScope = (scope: TokenScope | 'public') => SetMetadata(SCOPE_KEY, scope);

/**
 * Checks `Authorization: Bearer <token>` against the hashed tokens in Postgres, by the scope each
 * handler declares and the API_AUTH mode (writes: mutating endpoints; all: reads too).
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokenRepository,
    @Inject(API_ENV) private readonly env: ApiEnv,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const needs = this.reflector.getAllAndOverride<TokenScope | 'public' | undefined>(SCOPE_KEY, [context.getHandler(), context.getClass()]) ?? 'read';
    if (needs === 'public' || this.env.API_AUTH === 'off') return true;
    if (needs === 'read' && this.env.API_AUTH !== 'all') return true;
    const header = context.switchToHttp().getRequest<Request>().headers.authorization ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (!token) {
      throw new ApiError('unauthorized', `this endpoint needs an API token of scope ${needs}: send "Authorization: Bearer <token>" (create one with: npm run ddae -- token create --scope ${needs})`);
    }
    const row = await this.tokens.verify(token);
    if (!row) throw new ApiError('unauthorized', 'unknown or revoked API token');
    if (!scopeAllows(row.scope, needs)) throw new ApiError('forbidden', `token "${row.name}" has scope ${row.scope}; this endpoint needs ${needs}`);
    return true;
  }
}
