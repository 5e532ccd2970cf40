import type { BackendName, CheckpointInfo, ComputeResult, ComputeTask, GpuAdapter, ProgressPoint, TrainLossPoint } from '@ddae/contracts';

/** Messages from the worker to its compute child. */
export type ToChild = { type: 'run'; task: ComputeTask } | { type: 'stop'; reason: string };

/** Messages from the compute child to the worker. */
export type FromChild =
  | { type: 'ready'; backend: BackendName; detail: string; gpu?: GpuAdapter }
  | { type: 'progress'; fraction: number; step?: number; loss?: number; message?: string }
  | { type: 'checkpoint'; info: CheckpointInfo }
  | { type: 'progress-probe'; point: ProgressPoint }
  | { type: 'train-loss'; point: TrainLossPoint }
  | { type: 'done'; result: ComputeResult }
  | { type: 'error'; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

/**
 * Errors no retry can fix: the job fails at once with its reason. A GPU device error (a dropped
 * command, out of memory) recurs with the same model and batch; a lost device may not, and retries.
 */
export const NON_RETRYABLE_ERRORS = new Set(['NonFiniteLossError', 'DatasetMissingError', 'ZodError', 'ConfigError', 'UnsupportedError', 'GpuSelectionError', 'GpuDeviceError', 'DeviceLimitError', 'ImportError']);

/** The child stopped on request (cancel or shutdown) after writing a checkpoint. */
export const STOPPED_ERROR = 'StoppedError';
