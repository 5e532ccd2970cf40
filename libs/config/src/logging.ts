import { AsyncLocalStorage } from 'node:async_hooks';
import type { LoggerService, LogLevel } from '@nestjs/common';
import pino, { type DestinationStream, type Logger } from 'pino';

/** Nest's levels, most severe first, and pino's name for each. */
export const NEST_LOG_LEVELS: LogLevel[] = ['error', 'warn', 'log', 'debug', 'verbose'];
const PINO_LEVEL = { error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace', fatal: 'fatal' } as const;

/** Nest's levels enabled at LOG_LEVEL (for its own console logger, LOG_FORMAT=pretty). */
export function nestLogLevels(level: LogLevel): LogLevel[] {
  return NEST_LOG_LEVELS.slice(0, NEST_LOG_LEVELS.indexOf(level) + 1);
}

/**
 * The ids of what the current code runs for (sweep, run, job...): every log line written inside
 * `withLogContext` carries them, down every await, without passing them to each logger call.
 */
const context = new AsyncLocalStorage<Record<string, string>>();

/** Runs `fn` with `fields` added to every log line it writes (nested calls add to the outer fields). */
export function withLogContext<T>(fields: Record<string, string | undefined>, fn: () => T): T {
  return context.run({ ...context.getStore(), ...defined(fields) }, fn);
}

/** Adds fields to the current context (learnt later, e.g. a job's sweep once its row is claimed); nothing outside one. */
export function addLogContext(fields: Record<string, string | undefined>): void {
  const store = context.getStore();
  if (store) Object.assign(store, defined(fields));
}

function defined(fields: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined));
}

/** Structured fields that hold credentials, wherever they sit in a logged object (pino's redact paths). */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.authorization',
  '*.Authorization',
  '*.password',
  '*.token',
  '*.DATABASE_URL',
  '*.REDIS_URL',
  'authorization',
  'password',
  'token',
  'DATABASE_URL',
  'REDIS_URL',
];

/**
 * Credentials inside free text: a URL's password (`postgres://user:***@host`, `redis://:***@host`),
 * a bearer token, an API token of ours (`ddae_...`).
 */
export function redactText(text: string): string {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, '$1***@')
    .replace(/\b(Bearer\s+)[^\s"',;]+/gi, '$1[redacted]')
    .replace(/\bddae_[A-Za-z0-9_-]{16,}/g, 'ddae_[redacted]');
}

export interface ServiceLoggerOptions {
  level: LogLevel;
  /** Fields of every line (`service`, `worker`...). */
  base: Record<string, string>;
  /** Where lines go. Default stdout. */
  destination?: DestinationStream;
}

/**
 * The services' JSON logger (LOG_FORMAT=json): one object per line with `level` (a name), `time`
 * (ISO), `msg`, `context` (the Nest logger's name), the base fields and the current log context
 * (sweepId, runId, jobId...), credentials redacted in fields and in text.
 */
export function createServiceLogger(options: ServiceLoggerOptions): Logger {
  return pino(
    {
      level: PINO_LEVEL[options.level],
      base: options.base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => context.getStore() ?? {},
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? redactText(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    options.destination ?? pino.destination({ sync: true }),
  );
}

/** Nest's LoggerService over a pino logger (the worker's; the API's goes through nestjs-pino). */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    // Nest's error(message, stack?, context?).
    const [stack, context] = params.length >= 2 ? params : [undefined, params[0]];
    this.write('error', message, typeof context === 'string' ? [context] : [], typeof stack === 'string' ? stack : undefined);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace', message: unknown, params: unknown[], stack?: string): void {
    const context = typeof params[params.length - 1] === 'string' ? (params[params.length - 1] as string) : undefined;
    const fields: Record<string, unknown> = context ? { context } : {};
    if (stack) fields['stack'] = redactText(stack);
    if (message instanceof Error) this.logger[level]({ ...fields, err: message }, redactText(message.message));
    else if (typeof message === 'object' && message !== null) this.logger[level]({ ...fields, ...message });
    else this.logger[level](fields, String(message));
  }
}
