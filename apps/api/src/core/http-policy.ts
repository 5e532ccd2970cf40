import type { Express, NextFunction, Request, Response } from 'express';
import type { INestApplication } from '@nestjs/common';
import type { ApiEnv } from '@ddae/config';
import type { ErrorBody } from './error.filter';

/** Host names every API answers to unless ALLOWED_HOSTS says otherwise. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1'];

/** The host names a request may name (lowercase), or '*' for any. */
export function allowedHosts(env: Pick<ApiEnv, 'ALLOWED_HOSTS' | 'HOST'>): Set<string> | '*' {
  if (env.ALLOWED_HOSTS?.includes('*')) return '*';
  // Set but empty (ALLOWED_HOSTS=) means the default too: an API that refuses every request helps nobody.
  const names = env.ALLOWED_HOSTS?.length ? env.ALLOWED_HOSTS : [...LOOPBACK_HOSTS, ...(['0.0.0.0', '::', ''].includes(env.HOST) ? [] : [env.HOST])];
  return new Set(names.map((n) => n.toLowerCase()));
}

/** The host name of a Host header: no port, no IPv6 brackets, lowercase; undefined when absent. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  // One colon: host:port; several: a bare IPv6 address.
  return colon > 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

/**
 * What every response carries and who may ask, before anything else runs:
 * - `X-Content-Type-Options: nosniff` on every response, and no `X-Powered-By`;
 * - a Host allow-list (ALLOWED_HOSTS): a page on another site that rebinds its DNS name to this
 *   machine sends its own name as Host and is refused with 403, so it cannot read the API.
 *   `GET /health` is exempt: an orchestrator's probe names the pod's address, and it tells only
 *   whether Postgres and Redis answer. `GET /metrics` likewise (Prometheus scrapes the pod's
 *   address; it tells counts and latencies, nothing of a sweep's content);
 * - CORS (CORS_ORIGINS): no cross-origin access by default; listed origins may call with
 *   `Authorization`, `Content-Type`, `Idempotency-Key` and `Last-Event-ID`.
 */
export function installHttpPolicy(app: INestApplication, env: ApiEnv): void {
  const express = app.getHttpAdapter().getInstance() as Express;
  express.disable('x-powered-by');
  const hosts = allowedHosts(env);
  express.use((req: Request, res: Response, next: NextFunction) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (hosts === '*' || (req.method === 'GET' && (req.path === '/health' || req.path === '/metrics'))) return next();
    const host = hostName(req.headers.host);
    if (host !== undefined && hosts.has(host)) return next();
    const body: ErrorBody = {
      statusCode: 403,
      error: 'forbidden',
      message: `Host "${req.headers.host ?? ''}" is not a name this API answers to: add it to ALLOWED_HOSTS (now ${[...hosts].join(', ')})`,
    };
    res.status(403).json(body);
  });
  if (env.CORS_ORIGINS.length > 0) {
    app.enableCors({
      origin: env.CORS_ORIGINS.includes('*') ? '*' : env.CORS_ORIGINS,
      methods: ['GET', 'POST'],
      allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'Last-Event-ID'],
      maxAge: 600,
    });
  }
}
