import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

export interface ManagedProcess {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code once it is gone. */
  stop(graceMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
}

const ROOT = path.resolve(__dirname, '../../..');

/** Starts one of the workspace's TypeScript entry points (apps/x/src/main.ts) as a real process. */
export function startTsProcess(entry: string, env: Record<string, string>, label = path.basename(path.dirname(path.dirname(entry)))): ManagedProcess {
  return startNodeProcess(['-r', '@swc-node/register', entry], env, label);
}

/**
 * Builds the worker's compiled JavaScript (dist/worker) when a source changed since its last build:
 * a test never runs a stale worker. A content hash of the sources, so a few ms when nothing changed.
 */
export function ensureWorkerBuild(): void {
  execFileSync(process.execPath, ['scripts/build-worker.mjs', '--if-stale', '--quiet'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Starts a worker as it runs in production: the compiled JavaScript of the current tree (dist/worker/main.js). */
export function startWorkerProcess(env: Record<string, string>, label = 'worker'): ManagedProcess {
  ensureWorkerBuild();
  return startNodeProcess([path.join(ROOT, 'dist/worker/main.js')], env, label);
}

function startNodeProcess(args: string[], env: Record<string, string>, label: string): ManagedProcess {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buffer = '';
  const append = (chunk: Buffer) => {
    buffer += chunk.toString();
    if (buffer.length > 200_000) buffer = buffer.slice(-100_000);
    if (process.env.DDAE_TEST_VERBOSE) process.stderr.write(`[${label}] ${chunk}`);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => buffer,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
