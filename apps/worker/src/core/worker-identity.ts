import { Injectable } from '@nestjs/common';
import os from 'node:os';
import type { BackendName } from '@ddae/contracts';

export const WORKER_ENV = Symbol('WORKER_ENV');
export const PRISMA = Symbol('PRISMA');
export const COMPUTE_QUEUE = Symbol('COMPUTE_QUEUE');

/** Who this worker is; the backend is learned once, at start, from a probe of the compute child. */
@Injectable()
export class WorkerIdentity {
  readonly hostname = os.hostname();
  readonly pid = process.pid;
  id: string;
  device: string;
  backend: BackendName | 'auto' = 'auto';
  backendDetail = '';

  constructor(options: { id?: string; device?: string; cudaVisibleDevices?: string }) {
    this.id = options.id ?? `${this.hostname}-${this.pid}`;
    this.device = options.device ?? (options.cudaVisibleDevices ? `gpu${options.cudaVisibleDevices}` : 'cpu');
  }
}
