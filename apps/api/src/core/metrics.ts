import { Inject, Injectable } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { registerQueueDepth, type ComputeQueue } from '@ddae/queue';
import { COMPUTE_QUEUE } from './tokens';

/**
 * The API's Prometheus metrics, served at `GET /metrics`: the queue depth by state (read from Redis
 * at each scrape: what the autoscaler scales the workers on), the reconciler's actions, HTTP
 * latency by route template, and Node's process metrics. Each app has its own registry (no global
 * state: tests start several in one process).
 */
@Injectable()
export class ApiMetrics {
  readonly registry = new Registry();
  readonly reconcilerPasses = new Counter({ name: 'ddae_reconciler_passes_total', help: 'Reconciler passes by result (ok, failed)', labelNames: ['result'], registers: [this.registry] });
  readonly reconcilerActions = new Counter({
    name: 'ddae_reconciler_actions_total',
    help: 'Rows the reconciler acted on: requeued (its worker stopped heartbeating), reoffered (a queued row offered to the queue again; a no-op when its job exists)',
    labelNames: ['action'],
    registers: [this.registry],
  });
  readonly http = new Histogram({
    name: 'ddae_http_request_duration_seconds',
    help: 'HTTP request latency by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  constructor(@Inject(COMPUTE_QUEUE) queue: ComputeQueue) {
    collectDefaultMetrics({ register: this.registry });
    registerQueueDepth(this.registry, [queue.queue]);
    for (const result of ['ok', 'failed']) this.reconcilerPasses.inc({ result }, 0);
    for (const action of ['requeued', 'reoffered']) this.reconcilerActions.inc({ action }, 0);
  }

  /**
   * Express middleware timing every request, labelled by the route template Express matched
   * (`/api/sweeps/:id`, never the raw URL: one series per route, not per sweep), `unmatched` when
   * none did (a 404, or a request refused before routing). Event streams are timed until they close.
   */
  httpMiddleware() {
    return (req: Request, res: Response, next: NextFunction) => {
      const end = this.http.startTimer();
      res.once('close', () => {
        const route = (req.route as { path?: string } | undefined)?.path;
        end({ method: req.method, route: typeof route === 'string' ? route : 'unmatched', status: String(res.statusCode) });
      });
      next();
    };
  }
}
