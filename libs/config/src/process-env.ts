/**
 * The process environment. This module and the env schemas beside it are the only code that touches
 * `process.env` (a lint rule keeps it so): everything else reads its variables through a schema
 * (`loadEnv(workerEnvSchema)`...) or, for a library's optional knob, through `rawEnv()` here.
 */

/** The local development database; the one default DATABASE_URL. */
export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/ddae';

/** The process environment as it is (for libraries that parse their own optional variables, and for a child's env). */
export function rawEnv(): NodeJS.ProcessEnv {
  return process.env;
}

/** Sets a variable for this process and the children it starts (e.g. a native library's thread policy). */
export function setEnv(name: string, value: string): void {
  process.env[name] = value;
}

/** Sets a variable unless it is set already. */
export function setEnvDefault(name: string, value: string): void {
  process.env[name] ??= value;
}
