import { Redis } from 'ioredis';

/** Where the outage lines go (a Nest Logger fits). */
export interface OutageLog {
  warn(message: string): void;
  log(message: string): void;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** Whether an error says Redis cannot be reached (rather than that a command failed). */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; name?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  return typeof e.message === 'string' && /^(Connection is closed|Stream isn't writeable|connect ETIMEDOUT)/.test(e.message);
}

/**
 * Says once that Redis went away and once that it came back, however many reconnection attempts
 * BullMQ's and ioredis' connections make meanwhile (each of which would otherwise print its error,
 * a stack trace when nothing listens). A connection of its own, retrying every second at most,
 * tells when Redis is back; the queue's and the worker's errors are passed to `error()`, which
 * swallows the connection errors (opening the outage if it is not open yet) and hands back the rest.
 */
export class RedisOutageWatch {
  private readonly client: Redis;
  private downSince?: number;

  constructor(url: string, private readonly logger: OutageLog) {
    this.client = new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: false, connectionName: 'ddae-watch', retryStrategy: (times) => Math.min(200 * times, 1_000) });
    this.client.on('error', (e: Error) => this.down(e));
    this.client.on('ready', () => this.up());
  }

  /** Whether Redis is unreachable now. */
  get isDown(): boolean {
    return this.downSince !== undefined;
  }

  /** A connection error opens the outage (logged once) and returns true; any other error returns false for the caller to log. */
  error(error: Error): boolean {
    if (!isConnectionError(error)) return false;
    this.down(error);
    return true;
  }

  private down(error: Error): void {
    if (this.downSince !== undefined) return;
    this.downSince = Date.now();
    this.logger.warn(`Redis is unreachable (${error.message}): retrying quietly until it is back`);
  }

  private up(): void {
    if (this.downSince === undefined) return;
    const seconds = (Date.now() - this.downSince) / 1_000;
    this.downSince = undefined;
    this.logger.log(`Redis is back after ${seconds.toFixed(1)} s`);
  }

  close(): void {
    this.client.disconnect();
  }
}
