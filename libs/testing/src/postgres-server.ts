import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { freePort } from './process';
import { acceptsConnections, serverProcess } from './server-process';

export interface PostgresServerOptions {
  /** Port to listen on (127.0.0.1). Default: a free one. It stays the same across restarts. */
  port?: number;
}

/**
 * A PostgreSQL server of the test's own: a fresh cluster (initdb into a temporary folder, trust
 * authentication for the user `postgres`) run as a child process on its own port. Stopping or
 * killing it touches nothing else: not the machine's server, which other tests and processes use.
 */
export interface PostgresServer {
  port: number;
  /** `postgresql://postgres@127.0.0.1:<port>/postgres`: a server URL for `createTestDatabase`. */
  url: string;
  /** The cluster's folder (data directory under it). */
  dir: string;
  /** Whether the postmaster is running. */
  readonly running: boolean;
  /**
   * Stops the server: SIGINT (fast shutdown: clients disconnected, a checkpoint), SIGTERM (smart:
   * waits for clients), SIGQUIT (immediate: crash recovery on the next start) or SIGKILL of the
   * postmaster (its backends notice and exit; the next start recovers).
   */
  stop(signal?: 'SIGINT' | 'SIGTERM' | 'SIGQUIT' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(signal?: 'SIGINT' | 'SIGTERM' | 'SIGQUIT' | 'SIGKILL'): Promise<void>;
  /** Stops it for good and removes its folder. */
  dispose(): Promise<void>;
}

/**
 * The folder of PostgreSQL's server binaries (initdb, postgres): `PG_BIN` when set, else the
 * one on PATH, else the newest /usr/lib/postgresql/<version>/bin (Debian's layout).
 */
export function postgresBinDir(): string {
  if (process.env['PG_BIN']) return process.env['PG_BIN'];
  try {
    const found = execFileSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).trim();
    if (found) return path.dirname(found);
  } catch {
    // not on PATH
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(a) - Number(b));
  if (versions.length === 0) throw new Error('no initdb: install PostgreSQL\'s server package (apt-get install postgresql) or set PG_BIN to the folder holding initdb and postgres');
  return path.join(root, versions[versions.length - 1], 'bin');
}

/** initdb and postgres refuse to run as root: as root, they run as the user `postgres`. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root, and there is no user "postgres" to run initdb and postgres as: create one (useradd postgres) or run the tests as another user');
  }
}

export async function startPostgresServer(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'ddae-postgres-'));
  const as = runAs();
  if (as) chownSync(dir, as.uid, as.gid);
  const data = path.join(dir, 'data');
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C', ...(as ? { HOME: dir, USER: 'postgres' } : {}) };
  try {
    execFileSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], { stdio: 'pipe', env, cwd: dir, ...(as ?? {}) });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const e = error as { stderr?: Buffer; message: string };
    throw new Error(`initdb failed (${as ? 'as user postgres' : `as ${userInfo().username}`}): ${e.stderr?.toString().trim() || e.message}`);
  }
  // Its own port on 127.0.0.1 only, its socket in its own folder, no fsync (a test cluster).
  const args = ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'max_connections=100'];

  const server = serverProcess<'SIGINT' | 'SIGTERM' | 'SIGQUIT' | 'SIGKILL'>({
    name: `postgres on port ${port}`,
    spawn: () => spawn(path.join(bin, 'postgres'), args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: dir, ...(as ?? {}) }),
    // Ready when it accepts connections and says so (the port opens before recovery ends).
    ready: async (output) => /ready to accept connections/.test(output) && (await acceptsConnections(port)),
    readyWithinMs: 30_000,
    tail: 1500,
    defaultSignal: 'SIGINT',
    afterStop: async (signal) => {
      if (signal === 'SIGKILL') await orphansGone(dir);
    },
  });

  await server.start();
  return Object.assign(server, {
    port,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    dir,
    async dispose() {
      await server.stop('SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

/**
 * After a SIGKILL of the postmaster its backends live on until they notice (a second or so); a
 * new postmaster refuses to start while they hold the old shared memory. Waits for them to go.
 */
async function orphansGone(dir: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    let pids = '';
    try {
      pids = execFileSync('pgrep', ['-f', `postgres: .*`], { encoding: 'utf8' });
    } catch {
      return;
    }
    const ours = pids
      .split('\n')
      .filter(Boolean)
      .filter((pid) => {
        try {
          return execFileSync('readlink', [`/proc/${pid}/cwd`], { encoding: 'utf8' }).trim().startsWith(dir);
        } catch {
          return false;
        }
      });
    if (ours.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
