import { rawEnv } from '@ddae/config';
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { BackendName, CheckpointInfo, ComputeResult, ComputeTask, GpuAdapter, ProgressPoint, TrainLossPoint } from '@ddae/contracts';
import type { ChildUsage, FromChild, SerializedError, ToChild } from './child-protocol';

export interface ComputeProcessOptions {
  /** Backend the child loads (chosen once when the worker starts). */
  backend: BackendName | 'auto';
  /** Environment additions for the child (CUDA_VISIBLE_DEVICES, DDAE_GPU, DDAE_DATA_DIR). */
  env?: Record<string, string | undefined>;
  /** Jobs one child runs before a fresh one replaces it (COMPUTE_CHILD_MAX_JOBS). Default 1: a fresh child per job. */
  maxJobs?: number;
  /** A child whose RSS ends a job above this is replaced (COMPUTE_CHILD_MAX_RSS_MB). Default: no limit. */
  maxRssBytes?: number;
  /** A child holding more tensor bytes than this after a job is replaced (COMPUTE_CHILD_MAX_TENSOR_MB). Default: no limit. */
  maxTensorBytes?: number;
}

export interface ComputeCallbacks {
  /** The child's backend, once per fresh child (a warm child was ready before). */
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

function forkChild(options: ComputeProcessOptions, extraEnv: Record<string, string> = {}): ChildProcess {
  const entry = childEntry();
  return fork(entry.file, [], {
    execArgv: entry.execArgv,
    env: { ...rawEnv(), ...options.env, DDAE_BACKEND: options.backend, ...extraEnv },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
}

/** The job running on the child now: where the child's messages and its end go. */
interface Attempt {
  child: ChildProcess;
  message(message: FromChild): void;
  exit(code: number | null, signal: NodeJS.Signals | null): void;
  error(error: Error): void;
}

/** What a caller may learn of the child that ran a job (tests, logs). */
export interface ChildRecord {
  pid: number | undefined;
  /** Jobs this child has finished, this one included. */
  jobs: number;
  /** Why the child was replaced after this job; undefined while it stays warm. */
  retired?: string;
  usage?: ChildUsage;
  /** The task's time in the child (see the `done` message). */
  computeMs?: number;
}

/**
 * The worker's compute child, one job at a time. The child stays warm across jobs (TensorFlow.js,
 * its backend, data sets and checkpoint weights loaded once) and is replaced by a fresh one after
 * `maxJobs` jobs, when a job leaves it above `maxRssBytes` or `maxTensorBytes`, after a job that
 * failed or was stopped, and whenever it dies. Its death during a job fails that job's attempt
 * only: the next job forks a fresh child. The worker's own event loop stays free for BullMQ's lock
 * renewal and the heartbeat while the child computes.
 */
export class ComputeProcess {
  /** The live child that may take the next job (undefined: the next job forks one). */
  private child?: ChildProcess;
  private childReady = false;
  private jobsOnChild = 0;
  private attempt?: Attempt;
  private stopping = false;
  /** The child of the last job that ended, as it ended (tests, logs). */
  last?: ChildRecord;

  constructor(private readonly options: ComputeProcessOptions) {}

  /** The pid of the current child (running a job or warm), if any. */
  get pid(): number | undefined {
    return (this.attempt?.child ?? this.child)?.pid;
  }

  run(task: ComputeTask, callbacks: ComputeCallbacks = {}): Promise<ComputeResult> {
    if (this.attempt) return Promise.reject(new Error('the compute child is already running a job'));
    this.stopping = false;
    if (!this.child || !alive(this.child)) this.spawn();
    let child = this.child as ChildProcess;
    let chain: Promise<void> = Promise.resolve();
    let settled = false;
    /** The job went to a child that was already warm: until it says `started`, its death is not this job's. */
    let warm = this.childReady;
    let started = false;

    return new Promise<ComputeResult>((resolve, reject) => {
      const end = () => {
        if (this.attempt?.child === child) this.attempt = undefined;
      };
      /** The child ends its own life after this (an error, a stop): never offer it another job. */
      const drop = () => {
        if (this.child === child) this.child = undefined;
        // It exits by itself after its last message; a child that does not is not left behind.
        const timer = setTimeout(() => alive(child) && child.kill('SIGKILL'), 5_000);
        timer.unref();
        child.once('exit', () => clearTimeout(timer));
      };
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        // Every checkpoint message received before the end is recorded before we answer.
        chain.then(
          () => {
            end();
            fn();
          },
          (error: unknown) => {
            // Bookkeeping failed (e.g. Postgres unreachable past every retry): the attempt fails,
            // and its child must not train on beside the retry's.
            this.discard(child);
            end();
            reject(error);
          },
        );
      };
      /** Bookkeeping of a message, in arrival order; a failed write ends the attempt at once rather than when the child finishes. */
      const record = (write: () => Promise<void> | undefined) => {
        chain = chain.then(async () => {
          await write();
        });
        chain.catch((error: unknown) => {
          if (settled) return;
          settled = true;
          this.discard(child);
          end();
          reject(error);
        });
      };
      const start = () => {
        if (this.stopping) this.send(child, { type: 'stop', reason: 'stopping before start' });
        this.send(child, { type: 'run', task });
      };
      this.attempt = {
        child,
        message: (message) => {
          switch (message.type) {
            case 'ready':
              this.childReady = true;
              callbacks.onReady?.(message.backend, message.detail);
              start();
              break;
            case 'started':
              started = true;
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
            case 'done': {
              // Decided now, before the caller can start the next job on this child.
              this.jobsOnChild += 1;
              const retired = this.stopping ? 'stopped' : this.outgrown(message.usage);
              this.last = {
                pid: child.pid,
                jobs: this.jobsOnChild,
                ...(retired ? { retired } : {}),
                ...(message.usage ? { usage: message.usage } : {}),
                ...(message.computeMs !== undefined ? { computeMs: message.computeMs } : {}),
              };
              if (retired) this.retire(child, retired);
              finish(() => resolve(message.result));
              break;
            }
            case 'error':
              this.jobsOnChild += 1;
              this.last = { pid: child.pid, jobs: this.jobsOnChild, retired: `the task failed (${message.error.name})` };
              drop();
              finish(() => reject(new ComputeError(message.error)));
              break;
          }
        },
        error: (error) => finish(() => reject(error)),
        exit: (code, signal) => {
          // After its answer (a stopped or retired child leaving): the attempt is already decided.
          if (settled) return;
          if (warm && !started && !this.stopping) {
            // A warm child that died idle (killed, OOM) before this job reached it: the job never
            // ran there, so it is not this job's crash. Once, on a fresh child.
            warm = false;
            this.spawn();
            child = this.child as ChildProcess;
            if (this.attempt) this.attempt.child = child;
            return;
          }
          this.last = { pid: child.pid, jobs: this.jobsOnChild + 1, retired: `exited (code ${code}, signal ${signal})` };
          finish(() => reject(new ComputeError({ name: 'ComputeProcessExit', message: `compute child exited unexpectedly (code ${code}, signal ${signal})` })));
        },
      };
      if (this.childReady) start();
    });
  }

  /** Why a child that finished a job must not take another, if it must not. */
  private outgrown(usage: ChildUsage | undefined): string | undefined {
    const { maxJobs = 1, maxRssBytes, maxTensorBytes } = this.options;
    if (this.jobsOnChild >= maxJobs) return `ran ${this.jobsOnChild} job(s), the most one child runs`;
    if (!usage) return undefined;
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    if (maxRssBytes !== undefined && usage.rssBytes > maxRssBytes) return `resident memory ${mib(usage.rssBytes)} over ${mib(maxRssBytes)}`;
    if (maxTensorBytes !== undefined && usage.numBytes > maxTensorBytes) return `${usage.numTensors} tensors of ${mib(usage.numBytes)} over ${mib(maxTensorBytes)}`;
    return undefined;
  }

  private spawn(): void {
    const child = forkChild(this.options);
    this.child = child;
    this.childReady = false;
    this.jobsOnChild = 0;
    child.on('message', (message: FromChild) => {
      if (this.attempt?.child === child) this.attempt.message(message);
    });
    child.on('error', (error) => {
      if (this.attempt?.child === child) this.attempt.error(error);
    });
    child.on('exit', (code, signal) => {
      // A warm child that died between jobs (OOM-killed, kill -9): the next job forks a fresh one.
      if (this.child === child) this.child = undefined;
      if (this.attempt?.child === child) this.attempt.exit(code, signal);
    });
  }

  /** Asks a warm child to leave between jobs; the next job forks a fresh one. */
  private retire(child: ChildProcess, reason: string): void {
    if (this.child === child) this.child = undefined;
    this.send(child, { type: 'retire', reason });
    const timer = setTimeout(() => alive(child) && child.kill('SIGKILL'), 5_000);
    timer.unref();
    child.once('exit', () => clearTimeout(timer));
  }

  /** Kills a child whose job failed on the worker's side: it takes no more jobs. */
  private discard(child: ChildProcess): void {
    if (this.child === child) this.child = undefined;
    child.kill('SIGKILL');
  }

  /** Asks the running job's child to checkpoint and stop; kills it when it has not exited after `graceMs`. */
  stop(reason: string, graceMs: number): void {
    this.stopping = true;
    const child = this.attempt?.child;
    if (!child || !alive(child)) return;
    // Whatever it answers, this child takes no further job.
    if (this.child === child) this.child = undefined;
    this.send(child, { type: 'stop', reason });
    const timer = setTimeout(() => {
      if (alive(child)) child.kill('SIGKILL');
    }, graceMs);
    timer.unref();
    child.once('exit', () => clearTimeout(timer));
  }

  /** Ends an idle warm child (the worker is shutting down); a running job's child is left to `stop`. */
  close(): void {
    const child = this.child;
    if (!child || this.attempt?.child === child) return;
    this.retire(child, 'the worker is shutting down');
  }

  /** Starts a child only to learn which backend it gets: done once, when the worker starts. */
  static probeBackend(options: ComputeProcessOptions): Promise<{ backend: BackendName; detail: string; gpu?: GpuAdapter }> {
    const child = forkChild(options, { DDAE_PROBE_ONLY: '1' });
    return new Promise((resolve, reject) => {
      child.on('message', (message: FromChild) => {
        if (message.type === 'ready') resolve({ backend: message.backend, detail: message.detail, ...(message.gpu ? { gpu: message.gpu } : {}) });
        if (message.type === 'error') reject(new ComputeError(message.error));
      });
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`backend probe exited with code ${code} before answering`)));
    });
  }

  /** Kills the current child (running or warm) at once. */
  kill(): void {
    const child = this.attempt?.child ?? this.child;
    if (child) this.discard(child);
  }

  private send(child: ChildProcess, message: ToChild): void {
    // A child that died meanwhile fails the send: its exit decides what happens to the job.
    if (child.connected) child.send(message, (error: Error | null) => void error);
  }
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}
