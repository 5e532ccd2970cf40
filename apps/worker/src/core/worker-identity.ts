import { Injectable } from '@nestjs/common';
import os from 'node:os';
import { describeGpuAdapter, gpuDeviceLabel, type BackendName, type ComputeDevice, type GpuAdapter } from '@ddae/contracts';

export const WORKER_ENV = Symbol('WORKER_ENV');
export const PRISMA = Symbol('PRISMA');
export const COMPUTE_QUEUE = Symbol('COMPUTE_QUEUE');
/** The worker's RedisOutageWatch (libs/queue): a Redis outage is one line when it starts and one when it ends. */
export const REDIS_WATCH = Symbol('REDIS_WATCH');

/** Who this worker is; the backend is learned once, at start, from a probe of the compute child. */
@Injectable()
export class WorkerIdentity {
  readonly hostname = os.hostname();
  readonly pid = process.pid;
  id: string;
  /** What the heartbeat reports as the device: DEVICE, else the webgpu adapter, `gpu<CUDA_VISIBLE_DEVICES>` or `cpu`. */
  device: string;
  backend: BackendName | 'auto' = 'auto';
  backendDetail = '';
  /** On webgpu: the adapter the probe chose; every job's child is pinned to it. */
  gpu?: GpuAdapter;
  /** The data set directories the probe found at start: one that vanishes later is an environment fault. */
  datasetDirs: string[] = [];
  private readonly deviceOverride?: string;

  constructor(private readonly options: { id?: string; device?: string; cudaVisibleDevices?: string; gpu?: string }) {
    this.id = options.id ?? `${this.hostname}-${this.pid}`;
    this.deviceOverride = options.device;
    this.device = options.device ?? (options.cudaVisibleDevices ? `gpu${options.cudaVisibleDevices}` : 'cpu');
  }

  /** Records the backend (and adapter) the compute child's probe chose. */
  chose(probe: { backend: BackendName; detail: string; gpu?: GpuAdapter; datasetDirs?: string[] }): void {
    this.backend = probe.backend;
    this.datasetDirs = probe.datasetDirs ?? [];
    this.backendDetail = probe.detail;
    this.gpu = probe.gpu;
    if (probe.gpu && this.deviceOverride === undefined) this.device = describeGpuAdapter(probe.gpu);
  }

  /**
   * The device stored with what this worker computes (runs, probe results, baselines): the adapter
   * the result itself names (the child reports the one it computed on), else the adapter the worker
   * holds, else DEVICE, `gpu<CUDA_VISIBLE_DEVICES>` or `cpu`. DEVICE wins, as in the heartbeat.
   */
  resultDevice(computed?: ComputeDevice): string {
    if (this.deviceOverride !== undefined) return this.deviceOverride;
    const gpu = computed?.gpu ?? this.gpu;
    return gpu ? gpuDeviceLabel(gpu) : this.device;
  }

  /**
   * Environment of a compute child: the configured GPU for the probe; once chosen, the adapter
   * itself (its PCI address or its index), so every job computes on the GPU the worker holds.
   */
  childEnv(): Record<string, string | undefined> {
    const gpu = this.gpu ? (this.gpu.pci ?? String(this.gpu.index)) : this.options.gpu;
    return { CUDA_VISIBLE_DEVICES: this.options.cudaVisibleDevices, DDAE_GPU: gpu };
  }
}
