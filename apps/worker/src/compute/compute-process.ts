import { rawEnv } from '@ddae/config';
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { BackendName, CheckpointInfo, ComputeResult, ComputeTask, GpuAdapter, ProgressPoint, TrainLossPoint } from '@ddae/contracts';
import type { FromChild, SerializedError, ToChild } from './child-protocol';

export interface ComputeProcessOptions {
  /** Backend the child loads (chosen once when the worker starts). */
  backend: BackendName | 'auto';
  /** Environment additions for the child (CUDA_VISIBLE_DEVICES, DDAE_GPU, DDAE_DATA_DIR). */
  env?: Record<string, string | undefined>;
}

export interface ComputeCallbacks {
  onReady?(backend: BackendName, detail: string): void;
  onProgress?(message: Extract<FromChild, { type: 'progress' }>): void;
  /** Awaited in order: the job does not finish before every checkpoint is recorded. */
  onCheckpoint?(info: CheckpointInfo): Promise<void>;
  /** Probing during pretraining measured a checkpoint; awaited in order with the checkpoints. */
  onProgressProbe?(point: ProgressPoint): Promise<void>;
  /** A point of the training-loss curve; awaited in order with the checkpoints. */
  onTrainLoss?(point: TrainLossPoint): Promise<void>;
}

/** The compute child failed; `name` is the child's error name (retry policy keys on it). */
export class ComputeError extends Error {
  constructor(readonly remote: SerializedError) {
    super(remote.message);
    this.name = remote.name;
  }
}

/** How to start the child: compiled JavaScript next to this file, or TypeScript via swc. */
function childEntry(): { file: string; execArgv: string[] } {
  const ts = __filename.endsWith('.ts');
  const file = path.join(__dirname, ts ? 'compute-child.ts' : 'compute-child.js');
  return { file, execArgv: ts ? ['-r', '@swc-node/register'] : [] };
}

/**
 * Runs one compute task in a fresh child process and resolves with its result. The worker's own
 * event loop stays free for BullMQ's lock renewal and the heartbeat while the child computes.
 */
export class ComputeProcess {
  private child?: ChildProcess;
  private stopping = false;

  constructor(private readonly options: ComputeProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  run(task: ComputeTask, callbacks: ComputeCallbacks = {}): Promise<ComputeResult> {
    const entry = childEntry();
    const child = fork(entry.file, [], {
      execArgv: entry.execArgv,
      env: { ...rawEnv(), ...this.options.env, DDAE_BACKEND: this.options.backend },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.child = child;
    let chain: Promise<void> = Promise.resolve();
    let settled = false;

    return new Promise<ComputeResult>((resolve, reject) => {
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        // Every checkpoint message received before the end is recorded before we answer.
        chain.then(fn, (error: unknown) => {
          // Bookkeeping failed (e.g. Postgres unreachable past every retry): the attempt fails,
          // and its child must not train on beside the retry's.
          child.kill('SIGKILL');
          reject(error);
        });
      };
      /** Bookkeeping of a message, in arrival order; a failed write ends the attempt at once rather than when the child finishes. */
      const record = (write: () => Promise<void> | undefined) => {
        chain = chain.then(async () => {
          await write();
        });
        chain.catch((error: unknown) => {
          if (settled) return;
          settled = true;
          child.kill('SIGKILL');
          reject(error);
        });
      };
      child.on('message', (message: FromChild) => {
        switch (message.type) {
          case 'ready':
            callbacks.onReady?.(message.backend, message.detail);
            if (this.stopping) this.send({ type: 'stop', reason: 'stopping before start' });
            this.send({ type: 'run', task });
            break;
          case 'progress':
            callbacks.onProgress?.(message);
            break;
          case 'checkpoint':
            if (callbacks.onCheckpoint) {
              const info = message.info;
              record(() => callbacks.onCheckpoint?.(info));
            }
            break;
          case 'progress-probe':
            if (callbacks.onProgressProbe) {
              const point = message.point;
              record(() => callbacks.onProgressProbe?.(point));
            }
            break;
          case 'train-loss':
            if (callbacks.onTrainLoss) {
              const point = message.point;
              record(() => callbacks.onTrainLoss?.(point));
            }
            break;
          case 'done':
            finish(() => resolve(message.result));
            break;
          case 'error':
            finish(() => reject(new ComputeError(message.error)));
            break;
        }
      });
      child.on('error', (error) => finish(() => reject(error)));
      child.on('exit', (code, signal) => {
        finish(() =>
          reject(new ComputeError({ name: 'ComputeProcessExit', message: `compute child exited unexpectedly (code ${code}, signal ${signal})` })),
        );
      });
    });
  }

  /** Asks the child to checkpoint and stop; kills it when it has not exited after `graceMs`. */
  stop(reason: string, graceMs: number): void {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.send({ type: 'stop', reason });
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, graceMs);
    timer.unref();
    child.once('exit', () => clearTimeout(timer));
  }

  /** Starts a child only to learn which backend it gets: done once, when the worker starts. */
  static probeBackend(options: ComputeProcessOptions): Promise<{ backend: BackendName; detail: string; gpu?: GpuAdapter; datasetDirs: string[] }> {
    const entry = childEntry();
    const child = fork(entry.file, [], {
      execArgv: entry.execArgv,
      env: { ...rawEnv(), ...options.env, DDAE_BACKEND: options.backend, DDAE_PROBE_ONLY: '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    return new Promise((resolve, reject) => {
      child.on('message', (message: FromChild) => {
        if (message.type === 'ready') resolve({ backend: message.backend, detail: message.detail, ...(message.gpu ? { gpu: message.gpu } : {}), datasetDirs: message.datasetDirs ?? [] });
        if (message.type === 'error') reject(new ComputeError(message.error));
      });
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`backend probe exited with code ${code} before answering`)));
    });
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }

  private send(message: ToChild): void {
    if (this.child?.connected) this.child.send(message);
  }
}
