import { Injectable } from '@nestjs/common';
import os from 'node:os';
import { DATASET_NAMES, describeGpuAdapter, gpuDeviceLabel, type BackendName, type ComputeDevice, type DatasetName, type GpuAdapter } from '@ddae/contracts';
import { datasetDir } from '@ddae/datasets';

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
  /** The data sets it can read, as of its last look (at start, each heartbeat, each job that needs one). */
  datasets: DatasetName[] = [];
  /**
   * The directories of every data set it has been able to read: one that loses files later is an
   * environment fault (the machine broke), while one it never could read is a data set it lacks.
   */
  datasetDirs: string[] = [];
  /** On a GPU: what tfjs's buffer pool held at the end of the last job (reported with each heartbeat). */
  gpuMemory?: { allocatedBytes: number | null; usedBytes: number | null };
  private readonly deviceOverride?: string;

  constructor(private readonly options: { id?: string; device?: string; cudaVisibleDevices?: string; gpu?: string }) {
    this.id = options.id ?? `${this.hostname}-${this.pid}`;
    this.deviceOverride = options.device;
    this.device = options.device ?? (options.cudaVisibleDevices ? `gpu${options.cudaVisibleDevices}` : 'cpu');
  }

  /** Records the backend (and adapter) the compute child's probe chose. */
  chose(probe: { backend: BackendName; detail: string; gpu?: GpuAdapter }): void {
    this.backend = probe.backend;
    this.backendDetail = probe.detail;
    this.gpu = probe.gpu;
    if (probe.gpu && this.deviceOverride === undefined) this.device = describeGpuAdapter(probe.gpu);
  }

  /** Records the data sets it can read now (`readableDatasets()`: at start and with each heartbeat). */
  sawDatasets(readable: DatasetName[]): void {
    this.datasets = DATASET_NAMES.filter((n) => readable.includes(n));
    for (const name of this.datasets) {
      const dir = datasetDir(name);
      if (!this.datasetDirs.includes(dir)) this.datasetDirs.push(dir);
    }
  }

  /** Records the GPU memory a job's result reports (a result computed off a GPU leaves the last figures). */
  sawResult(computed?: ComputeDevice): void {
    const m = computed?.memory;
    if (!computed?.gpu || !m) return;
    this.gpuMemory = { allocatedBytes: m.gpuBytesAllocated ?? null, usedBytes: m.gpuBytesUsed ?? null };
  }

  /** Records what one look at one data set found (a job that needs it). */
  sawDataset(name: DatasetName, readable: boolean): void {
    this.sawDatasets(readable ? [...this.datasets, name] : this.datasets.filter((n) => n !== name));
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
