import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { ApiEnv } from '@ddae/config';
import type { RedisOutageWatch } from '@ddae/queue';
import { SweepOrchestrator } from '@ddae/sweeps';
import { ApiMetrics } from './metrics';
import { API_ENV, REDIS_WATCH } from './tokens';

/**
 * Re-enqueues queued rows whose job is missing from Redis (lost enqueue, flushed Redis) at start
 * and then periodically. Deterministic job ids make each pass a no-op for jobs that exist.
 */
@Injectable()
export class ReconcilerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Reconciler');
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly orchestrator: SweepOrchestrator,
    @Inject(API_ENV) private readonly env: ApiEnv,
    private readonly metrics: ApiMetrics,
    @Inject(REDIS_WATCH) private readonly redis: RedisOutageWatch,
  ) {}

  onApplicationBootstrap(): void {
    if (this.env.RECONCILE_MS <= 0) return;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.env.RECONCILE_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const { enqueued, reset } = await this.orchestrator.reconcile({ workerStaleMs: this.env.WORKER_STALE_MS });
      this.metrics.reconcilerPasses.inc({ result: 'ok' });
      this.metrics.reconcilerActions.inc({ action: 'requeued' }, reset);
      this.metrics.reconcilerActions.inc({ action: 'reoffered' }, enqueued);
      if (reset > 0) this.logger.warn(`requeued ${reset} rows whose worker stopped heartbeating`);
      if (enqueued > 0) this.logger.debug(`re-offered ${enqueued} queued rows to the queue`);
    } catch (error) {
      this.metrics.reconcilerPasses.inc({ result: 'failed' });
      // During a Redis outage (logged once by the watch) each pass failing is no news.
      if (this.redis.isDown) this.logger.debug(`reconcile failed: ${(error as Error).message}`);
      else this.logger.warn(`reconcile failed: ${(error as Error).message}`);
    } finally {
      this.running = false;
    }
  }
}
