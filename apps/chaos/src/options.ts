/** The chaos command's flags, each with its default. */
export interface ChaosOptions {
  /** Seed of every random choice (fault kinds, moments, victims, down times). Default 1. */
  seed: number;
  /** Worker processes. Default 3. */
  workers: number;
  /** Faults to inject while the sweep runs (worker kill -9 and Redis restarts, at least one of each when 2 or more). Default 5. */
  faults: number;
  /** Pretraining runs (seeds of one tiny DDPM). Default 3. */
  runs: number;
  /** Optimiser steps per run (a checkpoint every 8). Default 48. */
  steps: number;
  /** Give up on the sweep after this many seconds (what is unfinished then counts as lost). Default 900. */
  timeout: number;
  /** Print the figures as one JSON object, the last line of stdout. Default false. */
  json: boolean;
  /** Print every process's output as it comes (stderr). Default false. */
  verbose: boolean;
}

export const DEFAULTS: ChaosOptions = { seed: 1, workers: 3, faults: 5, runs: 3, steps: 48, timeout: 900, json: false, verbose: false };

export const USAGE = `Usage: npm run -s chaos -- [--json] [--seed N] [--workers N] [--faults N] [--runs N] [--steps N] [--timeout S] [--verbose]

Runs a small real sweep (tiny DDPM on Fashion-MNIST) on worker processes over a fresh Postgres
database and a Redis server of its own, kills workers with SIGKILL (and restarts them) and restarts
Redis at random moments, then counts from Postgres what was lost and what was counted twice.

  --seed N      seed of every random choice (default ${DEFAULTS.seed})
  --workers N   worker processes, 2..8 (default ${DEFAULTS.workers})
  --faults N    faults to inject, 0..50 (default ${DEFAULTS.faults})
  --runs N      pretraining runs (seeds), 1..12 (default ${DEFAULTS.runs})
  --steps N     steps per run, 8..2000 (default ${DEFAULTS.steps})
  --timeout S   seconds before giving up on the sweep, 30..7200 (default ${DEFAULTS.timeout})
  --json        last stdout line: one JSON object (jobsLost, duplicateResults, recoverySeconds, ...)
  --verbose     stream every process's output to stderr
  --help        this text

Exit code: 0 when nothing was lost and nothing counted twice, 1 otherwise, 2 on bad flags.`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const INTEGER_FLAGS: Record<string, { key: keyof ChaosOptions; min: number; max: number }> = {
  '--seed': { key: 'seed', min: 0, max: 2 ** 32 - 1 },
  '--workers': { key: 'workers', min: 2, max: 8 },
  '--faults': { key: 'faults', min: 0, max: 50 },
  '--runs': { key: 'runs', min: 1, max: 12 },
  '--steps': { key: 'steps', min: 8, max: 2000 },
  '--timeout': { key: 'timeout', min: 30, max: 7200 },
};

/** Parses argv (without node and the script); throws UsageError naming the bad flag. */
export function parseOptions(argv: string[]): ChaosOptions | 'help' {
  const options: ChaosOptions = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--json') {
      options.json = true;
      continue;
    }
    if (arg === '--verbose') {
      options.verbose = true;
      continue;
    }
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const spec = INTEGER_FLAGS[flag];
    if (!spec) throw new UsageError(`unknown argument "${arg}"`);
    const raw = inline ?? argv[++i];
    if (raw === undefined || raw === '') throw new UsageError(`${flag} needs a value`);
    if (!/^\d+$/.test(raw)) throw new UsageError(`${flag} must be a whole number, got "${raw}"`);
    const value = Number(raw);
    if (value < spec.min || value > spec.max) throw new UsageError(`${flag} must be between ${spec.min} and ${spec.max}, got ${value}`);
    (options[spec.key] as number) = value;
  }
  return options;
}
