import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './process';
import { acceptsConnections, serverProcess } from './server-process';

export interface RedisServerOptions {
  /** Port to listen on. Default: a free one. It stays the same across restarts. */
  port?: number;
  /** `requirepass`: clients must send it (`redis://:<password>@host:port`). Default none. */
  password?: string;
  /**
   * Serve TLS only (`--tls-port`, plain port off) with a fresh self-signed certificate for
   * 127.0.0.1; clients trust it through `caFile` (e.g. `NODE_EXTRA_CA_CERTS`). Default false.
   */
  tls?: boolean;
  /** More redis-server arguments, after the defaults (e.g. `['--maxmemory-policy', 'allkeys-lru']`). */
  args?: string[];
}

/**
 * A redis-server of the test's own, as a child process on its own port, with nothing on disk:
 * restarting it is a real Redis restart (connections drop, it comes back empty) without touching
 * the machine's shared Redis that other tests and processes use.
 */
export interface RedisServer {
  port: number;
  /** `redis://` or `rediss://`, with the password when there is one. */
  url: string;
  /** The certificate clients must trust (TLS only). */
  caFile?: string;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** Stops the server: SIGTERM (a clean shutdown, nothing saved) or SIGKILL (a crash). */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Stops it for good and removes its folder. */
  dispose(): Promise<void>;
}

/** Whether this machine's redis-server was built with TLS (Debian's is). */
export function redisServerHasTls(): boolean {
  // Without a certificate it exits at once either way: complaining about the missing certificate
  // (TLS built in) or about an unknown directive (no TLS).
  try {
    execFileSync('redis-server', ['--port', '0', '--tls-port', '1'], { stdio: 'pipe', timeout: 5_000 });
    return true;
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer };
    return /tls-cert-file/i.test(`${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'ddae-redis-'));
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning'];
  if (options.password) args.push('--requirepass', options.password);
  if (options.args) args.push(...options.args);
  let caFile: string | undefined;
  if (options.tls) {
    caFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', caFile], { stdio: 'ignore' });
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', caFile, '--tls-key-file', keyFile, '--tls-auth-clients', 'no');
  } else {
    args.push('--port', String(port));
  }
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  const url = `${options.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}`;

  const server = serverProcess<'SIGTERM' | 'SIGKILL'>({
    name: `redis-server on port ${port}`,
    spawn: () => spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] }),
    // Ready when the port accepts connections (the log is quiet at loglevel warning).
    ready: () => acceptsConnections(port),
    readyWithinMs: 10_000,
    tail: 1000,
    defaultSignal: 'SIGTERM',
  });

  await server.start();
  return Object.assign(server, {
    port,
    url,
    caFile,
    async dispose() {
      await server.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
