import { Injectable } from '@nestjs/common';

/**
 * Whether this worker's machine is fit to take jobs. Once an environment fault is met during a job
 * (see environment-fault.ts) the worker is unhealthy for the rest of its life: it stops taking jobs
 * and reports why (heartbeat, GET /api/workers, its /health), until someone fixes the machine and
 * restarts it. A restart runs the start-up checks again, so a machine still broken refuses to start
 * and never takes (nor spends an attempt of) a job.
 */
@Injectable()
export class WorkerHealth {
  private why?: string;
  private listener?: (reason: string) => Promise<void>;

  get reason(): string | undefined {
    return this.why;
  }

  /** What to do when the worker turns unhealthy (the runtime stops consuming); awaited by `unhealthy`. */
  onUnhealthy(listener: (reason: string) => Promise<void>): void {
    this.listener = listener;
  }

  /** Marks the worker unhealthy (the first reason stays) and waits until it has stopped taking jobs. */
  async unhealthy(reason: string): Promise<void> {
    if (this.why !== undefined) return;
    this.why = reason;
    await this.listener?.(reason);
  }
}
