import { Injectable } from '@nestjs/common';
import type { ComputeProcess } from '../compute/compute-process';

export interface RunningJob {
  jobId: string;
  label: string;
  child: ComputeProcess;
  /** Reads the row's status from Postgres: a CANCELLED row stops the child. */
  status(): Promise<string | null>;
}

/** The job this worker is running, if any (one at a time: one device, one job). */
@Injectable()
export class CurrentJob {
  private job?: RunningJob;

  start(job: RunningJob): void {
    this.job = job;
  }

  clear(): void {
    this.job = undefined;
  }

  get(): RunningJob | undefined {
    return this.job;
  }
}
