import { z } from 'zod';
import { BACKENDS, parseGpuSelector } from '@ddae/contracts';
import { DEFAULT_DATABASE_URL, rawEnv } from './process-env';

/**
 * Configuration from the environment, one schema per app, validated before Nest starts.
 * Nothing else in the code base reads process.env. Each variable has its default beside it.
 */

const port = z.coerce.number().int().min(0).max(65535);
/** A comma-separated list (spaces ignored, empty entries dropped). */
const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const shared = {
  /** Postgres URL. Default: the local development database. */
  DATABASE_URL: z.string().url().default(DEFAULT_DATABASE_URL),
  /** Redis URL (redis:// or rediss:// for TLS; a password goes in the URL). */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Prefix of every BullMQ key; tests use a unique one per run. Default `ddae`. */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('ddae'),
  /** Root directory of checkpoints and features; a shared mount when workers span machines. */
  ARTIFACT_DIR: z.string().default('./artifacts'),
  /** Log level. Default `log`. */
  LOG_LEVEL: z.enum(['error', 'warn', 'log', 'debug', 'verbose']).default('log'),
  /**
   * `json`: one JSON object per line (pino: level, time, msg, context, the sweep/run/job/worker ids,
   * credentials redacted), for a log collector; `pretty`: Nest's coloured lines, for a terminal.
   * Default pretty.
   */
  LOG_FORMAT: z.enum(['json', 'pretty']).default('pretty'),
};

export const apiEnvSchema = z.object({
  ...shared,
  /** HTTP port. Default 3000. */
  PORT: port.default(3000),
  /** Interface to bind. Default 127.0.0.1. */
  HOST: z.string().default('127.0.0.1'),
  /** Largest accepted request body. Default 1mb. */
  BODY_LIMIT: z.string().default('1mb'),
  /** A worker whose last heartbeat is older than this is not live. Default 30 s. */
  WORKER_STALE_MS: z.coerce.number().int().positive().default(30_000),
  /**
   * API tokens: `writes` (default) requires a token of scope submit on every mutating endpoint;
   * `all` also requires one of scope read on reads; `off` for a trusted local setup only.
   */
  API_AUTH: z.enum(['off', 'writes', 'all']).default('writes'),
  /** Period of the reconciler that re-offers queued rows to the queue (0: off). Default 30 s. */
  RECONCILE_MS: z.coerce.number().int().min(0).default(30_000),
  /**
   * Origins (`https://lab.example:8443`, comma-separated) whose pages may call the API from a
   * browser (CORS); `*` for any. Default none: only the API's own web page, which is same-origin.
   */
  CORS_ORIGINS: list.default([]),
  /**
   * Host names (no port, comma-separated) the API answers to: a request whose Host header names
   * another is refused with 403, so a page elsewhere cannot reach the API through DNS rebinding.
   * `*` turns the check off. Default (also when empty) `localhost`, `127.0.0.1`, `::1`, and HOST
   * when it is a specific address (not 0.0.0.0 or ::); behind a proxy or under another name, list
   * that name. `GET /health` is exempt (orchestrators' probes name the pod's address).
   */
  ALLOWED_HOSTS: list.optional(),
});
export type ApiEnv = z.infer<typeof apiEnvSchema>;

export const workerEnvSchema = z.object({
  ...shared,
  /** Stable id of this worker; default `<hostname>-<pid>`. */
  WORKER_ID: z.string().regex(/^[A-Za-z0-9_.-]+$/).optional(),
  /**
   * Backend: auto picks tfjs-node-gpu, webgpu (a hardware GPU adapter only), tfjs-node, native (our
   * N-API kernels on OpenBLAS), wasm, cpu in that order. `webgpu` forces WebGPU and then accepts a
   * software adapter too (how CI tests it). Default auto.
   */
  DDAE_BACKEND: z.enum(['auto', ...BACKENDS]).default('auto'),
  /**
   * The GPU of this worker's webgpu backend: `auto` (default: the one hardware adapter visible; an
   * error when there are several), an adapter index (`0`, `1`, ... in Dawn's list), a PCI address
   * (`pci-0000_3b_00_0`, for identical GPUs) or part of an adapter name. One worker per GPU: a
   * second worker started on a GPU that a live worker on this host holds refuses to start.
   */
  DDAE_GPU: z
    .string()
    .default('auto')
    .superRefine((v, ctx) => {
      try {
        parseGpuSelector(v);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),
  /** Device label reported to the API (e.g. `gpu0`); default: the adapter (webgpu), `gpu<CUDA_VISIBLE_DEVICES>` or `cpu`. */
  DEVICE: z.string().optional(),
  /** Passed to the compute child so one process owns one GPU. */
  CUDA_VISIBLE_DEVICES: z.string().optional(),
  /** Data set root (a folder holding `<name>/`); default each data set's Debian path. */
  DDAE_DATA_DIR: z.string().optional(),
  /** Heartbeat period. Default 5 s. */
  HEARTBEAT_MS: z.coerce.number().int().positive().default(5_000),
  /**
   * Another worker whose last heartbeat is older than this is not live: a job needing a data set
   * this worker lacks is handed back only while a live worker reports it. Default 30 s (the API's too).
   */
  WORKER_STALE_MS: z.coerce.number().int().positive().default(30_000),
  /** BullMQ lock duration; renewed by the (never blocked) main loop. Default 30 s. */
  LOCK_DURATION_MS: z.coerce.number().int().positive().default(30_000),
  /** How often BullMQ looks for jobs whose worker died (their lock expired). Default 30 s. */
  STALLED_INTERVAL_MS: z.coerce.number().int().positive().default(30_000),
  /** Health HTTP port (0: pick a free one; -1: none). Default -1. */
  HEALTH_PORT: z.coerce.number().int().min(-1).max(65535).default(-1),
  /** Grace period on SIGTERM before the compute child is killed. Default 30 s. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().default(30_000),
  /** Whether the worker consumes jobs from the start. Default true. */
  WORKER_AUTORUN: bool.default(true),
  /**
   * The compute child stays warm across jobs (TensorFlow.js, data sets, checkpoint weights loaded
   * once) and is replaced by a fresh one after this many jobs. 1: a fresh child per job. Default 50.
   */
  COMPUTE_CHILD_MAX_JOBS: z.coerce.number().int().positive().default(50),
  /** A warm compute child whose resident memory (RSS) ends a job above this many MiB is replaced. Default 4096. */
  COMPUTE_CHILD_MAX_RSS_MB: z.coerce.number().positive().default(4096),
  /** A warm compute child holding more than this many MiB of tensors (`tf.memory().numBytes`) after a job is replaced. Default 1024. */
  COMPUTE_CHILD_MAX_TENSOR_MB: z.coerce.number().positive().default(1024),
});
export type WorkerEnv = z.infer<typeof workerEnvSchema>;

/** The CLI's variables (each overridden by its option: --api, --token...). */
export const cliEnvSchema = z.object({
  /** The API's base URL (--api). Default http://127.0.0.1:3000. */
  DDAE_API_URL: z.string().url().default('http://127.0.0.1:3000'),
  /** An API token (--token), sent as a Bearer token. */
  DDAE_API_TOKEN: z.string().min(1).optional(),
  /** Postgres, for `token` (which writes the tokens table directly). */
  DATABASE_URL: shared.DATABASE_URL,
  /** The workers' artifact root: `cache` defaults to its features/ folder. Default: none. */
  ARTIFACT_DIR: z.string().optional(),
});
export type CliEnv = z.infer<typeof cliEnvSchema>;

/** The compute child's own variable (the rest it reads as the libraries it runs do). */
export const computeChildEnvSchema = z.object({
  /** `1`: the child only probes the backend at start-up (names it, then exits). Default 0. */
  DDAE_PROBE_ONLY: z.enum(['0', '1']).default('0'),
  /** Checkpoints whose weights a warm child keeps loaded for probing (most recently used first). 0: none. Default 2. */
  DDAE_MODEL_CACHE: z.coerce.number().int().min(0).max(16).default(2),
});

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment against a schema; throws one error listing every bad variable. */
export function loadEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = rawEnv()): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
