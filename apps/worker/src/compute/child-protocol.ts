import type { BackendName, CheckpointInfo, ComputeResult, ComputeTask, GpuAdapter, ProgressPoint, TrainLossPoint } from '@ddae/contracts';

/**
 * Messages from the worker to its compute child: run a task, stop the running one (it checkpoints
 * and the child exits), or leave (a warm child between jobs, replaced by a fresh one).
 */
export type ToChild = { type: 'run'; task: ComputeTask } | { type: 'stop'; reason: string } | { type: 'retire'; reason: string };

/** What a compute child holds after a job: the worker replaces a warm child that grew past its limits. */
export interface ChildUsage {
  /** tf.memory(): tensors alive and their bytes (the cached models' weights among them). */
  numTensors: number;
  numBytes: number;
  /** process.memoryUsage().rss of the child. */
  rssBytes: number;
}

/** Messages from the compute child to the worker. */
export type FromChild =
  | { type: 'ready'; backend: BackendName; detail: string; gpu?: GpuAdapter }
  /** The child took the task (from then on, its death is this job's failed attempt). */
  | { type: 'started' }
  | { type: 'progress'; fraction: number; step?: number; loss?: number; message?: string }
  | { type: 'checkpoint'; info: CheckpointInfo }
  | { type: 'progress-probe'; point: ProgressPoint }
  | { type: 'train-loss'; point: TrainLossPoint }
  /** computeMs: the task's time in the child, from the `run` message to its result (the job's compute, the rest is overhead). */
  | { type: 'done'; result: ComputeResult; usage?: ChildUsage; computeMs?: number }
  | { type: 'error'; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** A system error's code (EACCES, ENOSPC, ENOTDIR, ...), the call and the path it failed on. */
  code?: string;
  syscall?: string;
  path?: string;
  /** startup: before the child was ready (loading and initialising the backend); task: while computing. */
  phase?: 'startup' | 'task';
}

/** An error as it crosses the IPC channel: name, message and, for a system error, where it happened. */
export function serializeError(error: unknown, phase: 'startup' | 'task'): SerializedError {
  // Duck-typed: an error from another realm (a vm context) is no `instanceof Error` here.
  const isError = typeof error === 'object' && error !== null && typeof (error as Error).message === 'string';
  const e = isError ? (error as Error) : new Error(String(error));
  const where = e as Partial<NodeJS.ErrnoException>;
  return {
    name: e.name,
    message: e.message,
    stack: e.stack,
    phase,
    ...(typeof where.code === 'string' ? { code: where.code } : {}),
    ...(typeof where.syscall === 'string' ? { syscall: where.syscall } : {}),
    ...(typeof where.path === 'string' ? { path: where.path } : {}),
  };
}

/**
 * Errors no retry can fix: the job fails at once with its reason. A GPU device error (a dropped
 * command) or running out of GPU memory recurs with the same model and batch; a lost device may
 * not, and retries.
 */
export const NON_RETRYABLE_ERRORS = new Set(['NonFiniteLossError', 'DatasetMissingError', 'ZodError', 'ConfigError', 'UnsupportedError', 'GpuSelectionError', 'GpuDeviceError', 'DeviceLimitError', 'GpuOutOfMemoryError', 'ImportError']);

/** The child stopped on request (cancel or shutdown) after writing a checkpoint. */
export const STOPPED_ERROR = 'StoppedError';
