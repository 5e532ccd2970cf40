import { Inject, Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Job } from 'bullmq';
import { WorkerIdentity } from './worker-identity';

/** How a job's processing ended, as `ddae_worker_jobs_total{result}` names it. */
export type JobResult = 'done' | 'skipped' | 'cancelled' | 'failed' | 'released' | 'delayed';

/** A processor's outcome or error as a result label (WaitingError: handed back; DelayedError: put off). */
export function jobResultOf(outcome: { outcome: 'done' | 'skipped' | 'cancelled' } | Error): JobResult {
  if (!(outcome instanceof Error)) return outcome.outcome;
  if (outcome.name === 'WaitingError') return 'released';
  if (outcome.name === 'DelayedError') return 'delayed';
  return 'failed';
}

const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1_200, 1_800, 3_600, 7_200, 14_400];

/**
 * A worker's Prometheus metrics, served at `/metrics` on its HEALTH_PORT: jobs by kind and result,
 * job duration and queue wait, training throughput, how busy it is, and Node's process metrics.
 * Every series carries `worker` (its id).
 */
@Injectable()
export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly jobs = new Counter({ name: 'ddae_worker_jobs_total', help: 'Jobs this worker processed, by kind and result (done, skipped, cancelled, failed, released: handed back, delayed: its sweep at its concurrency cap)', labelNames: ['kind', 'result'], registers: [this.registry] });
  private readonly duration = new Histogram({ name: 'ddae_worker_job_duration_seconds', help: 'Time from taking a job to its end, by kind and result', labelNames: ['kind', 'result'], buckets: DURATION_BUCKETS, registers: [this.registry] });
  private readonly wait = new Histogram({ name: 'ddae_worker_job_queue_wait_seconds', help: 'Time a job waited between being enqueued (or its retry scheduled) and this worker taking it, by kind', labelNames: ['kind'], buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3_600, 14_400], registers: [this.registry] });
  private readonly images = new Counter({ name: 'ddae_worker_training_images_total', help: 'Training images (steps x batch size) this worker pretrained on', registers: [this.registry] });
  private readonly imageRate = new Gauge({ name: 'ddae_worker_training_images_per_second', help: 'Training throughput between the last two progress reports of the running pretraining (0 when not training)', registers: [this.registry] });
  private readonly busySeconds = new Counter({ name: 'ddae_worker_busy_seconds_total', help: 'Seconds spent processing jobs (rate() of it is the busy ratio over a window)', registers: [this.registry] });
  private readonly busy = new Gauge({ name: 'ddae_worker_busy', help: 'Whether the worker is processing a job (1) or not (0)', registers: [this.registry] });
  private readonly startedAt = Date.now();
  private busySince?: number;
  private busyMs = 0;
  private last?: { runId: string; step: number; at: number };

  constructor(@Inject(WorkerIdentity) identity: WorkerIdentity) {
    this.registry.setDefaultLabels({ worker: identity.id });
    collectDefaultMetrics({ register: this.registry });
    this.busy.set(0);
    const busyMsAt = (now: number) => this.busyMsAt(now);
    const startedAt = this.startedAt;
    new Gauge({
      name: 'ddae_worker_busy_ratio',
      help: 'Fraction of its life this worker spent processing jobs',
      registers: [this.registry],
      collect() {
        const now = Date.now();
        this.set(Math.min(1, busyMsAt(now) / Math.max(1, now - startedAt)));
      },
    });
  }

  private busyMsAt(now: number): number {
    return this.busyMs + (this.busySince === undefined ? 0 : now - this.busySince);
  }

  /** A job was taken: its queue wait is observed and the worker counts as busy. */
  jobStarted(job: Pick<Job, 'name' | 'timestamp' | 'processedOn' | 'delay'>): void {
    const now = Date.now();
    const enqueued = job.timestamp + (job.delay ?? 0);
    this.wait.observe({ kind: job.name }, Math.max(0, ((job.processedOn ?? now) - enqueued) / 1_000));
    this.busySince = now;
    this.busy.set(1);
  }

  /** A job's processing ended (`startedAt`: when it was taken). */
  jobEnded(kind: string, result: JobResult, startedAt: number): void {
    const now = Date.now();
    this.jobs.inc({ kind, result });
    this.duration.observe({ kind, result }, (now - startedAt) / 1_000);
    if (this.busySince !== undefined) {
      const ms = now - this.busySince;
      this.busyMs += ms;
      this.busySeconds.inc(ms / 1_000);
      this.busySince = undefined;
    }
    this.busy.set(0);
    this.last = undefined;
    this.imageRate.set(0);
  }

  /** A pretraining progress report: images since the previous report of the same run feed the counter and the rate. */
  trainingProgress(runId: string, step: number, batchSize: number): void {
    const now = Date.now();
    const last = this.last;
    this.last = { runId, step, at: now };
    // The first report of an attempt (a resumed run starts past step 0) only sets the baseline.
    if (!last || last.runId !== runId || step <= last.step) return;
    const images = (step - last.step) * batchSize;
    this.images.inc(images);
    if (now > last.at) this.imageRate.set(images / ((now - last.at) / 1_000));
  }
}
