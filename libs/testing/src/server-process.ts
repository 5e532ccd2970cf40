import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';

export interface ServerProcessOptions<S extends NodeJS.Signals> {
  /** How errors name it, e.g. `redis-server on port 6390`. */
  name: string;
  /** Starts the process (its stdout and stderr piped). */
  spawn: () => ChildProcess;
  /** Whether it is ready, from its output so far (and e.g. a connection attempt). */
  ready: (output: string) => Promise<boolean>;
  /** How long it may take to be ready, and how much of its output an error quotes (the end). */
  readyWithinMs: number;
  tail: number;
  /** The signal of a plain stop(). */
  defaultSignal: S;
  /** Waits for what outlives the process after a stop with this signal (nothing by default). */
  afterStop?: (signal: S) => Promise<void>;
}

/** A server run as a child process of the test's own, started and stopped as often as a test wants. */
export interface ServerProcess<S extends NodeJS.Signals> {
  /** Whether the process is running. */
  readonly running: boolean;
  /** Starts it (when it is not running); resolves once `ready` says so, throws if it exits or takes too long. */
  start(): Promise<void>;
  /** Sends the signal and waits for the process to exit (and for `afterStop`); nothing when it is not running. */
  stop(signal?: S): Promise<void>;
  /** stop() then start(). */
  restart(signal?: S): Promise<void>;
}

/** The start, stop and restart that the test servers (postgres-server.ts, redis-server.ts) share. */
export function serverProcess<S extends NodeJS.Signals>(options: ServerProcessOptions<S>): ServerProcess<S> {
  let child: ChildProcess | undefined;
  let output = '';
  const alive = () => Boolean(child && child.exitCode === null && child.signalCode === null);

  const start = async () => {
    if (alive()) return;
    output = '';
    const proc = options.spawn();
    child = proc;
    proc.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const deadline = Date.now() + options.readyWithinMs;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${options.name} exited (${proc.exitCode ?? proc.signalCode}): ${output.slice(-options.tail)}`);
      if (await options.ready(output)) return;
      if (Date.now() > deadline) throw new Error(`${options.name} did not accept connections within ${options.readyWithinMs / 1000} s: ${output.slice(-options.tail)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const stop = async (signal: S = options.defaultSignal) => {
    const proc = child;
    if (!proc || !alive()) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
    await options.afterStop?.(signal);
  };

  return {
    get running() {
      return alive();
    },
    start,
    stop,
    async restart(signal) {
      await stop(signal);
      await start();
    },
  };
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
