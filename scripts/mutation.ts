/**
 * Mutation testing of the core, library by library (StrykerJS, configured in stryker.config.cjs):
 *   npm run -s mutation -- [--json] [--only <target>] [--mutate <files>] [--force]
 * --only    one target (sweeps, probe, linear-probe, diffusion, worker); default all of them, one after another
 * --force   ignore Stryker's incremental file (tmp/mutation/<target>/incremental.json) and test
 *           every mutant again; by default only mutants whose code or tests changed are re-run
 * --mutate  files (and line ranges) to mutate instead of the target's list, comma-separated, e.g.
 *           libs/diffusion/src/schedules.ts,libs/diffusion/src/train.ts:386-507 (with --only)
 * --json    stdout is only the summary line; Stryker's own output goes to stderr either way
 * The last line of stdout is one JSON object:
 *   {"libraries": {"<target>": {"score", "killed", "survived", "noCoverage", "timeout", "mutants", "seconds"}}, "total": {...}}
 * score = (killed + timeout) / (killed + timeout + survived + noCoverage) x 100, Stryker's own.
 * Each target's full report (every mutant, its status and the tests that killed it) is
 * tmp/mutation/<target>/mutation.json; the summary is also written to tmp/mutation/summary.json.
 * Not part of npm test or CI: tens of minutes on 2 shared cores (docs/results.md).
 */
import { rawEnv } from '@ddae/config';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
/** The targets of stryker.config.cjs, in the order they run. */
export const MUTATION_TARGETS = ['sweeps', 'probe', 'linear-probe', 'diffusion', 'worker'] as const;
type Target = (typeof MUTATION_TARGETS)[number];

export interface MutationCounts {
  score: number;
  killed: number;
  survived: number;
  noCoverage: number;
  timeout: number;
  /** Every mutant Stryker made, including compile and runtime errors (not in the score). */
  mutants: number;
  seconds: number;
}

interface Options {
  json: boolean;
  only?: Target;
  force: boolean;
  mutate?: string;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { json: false, force: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--force') opts.force = true;
    else if (a === '--mutate') {
      const v = argv[++i];
      if (!v || v.startsWith('--')) throw new Error('--mutate: expected comma-separated files, e.g. libs/probe/src/metrics.ts');
      opts.mutate = v;
    }
    else if (a === '--only') {
      const v = argv[++i];
      if (!MUTATION_TARGETS.includes(v as Target)) throw new Error(`--only: expected one of ${MUTATION_TARGETS.join(', ')}, got ${JSON.stringify(v)}`);
      opts.only = v as Target;
    } else throw new Error(`unknown argument ${JSON.stringify(a)} (usage: npm run -s mutation -- [--json] [--only <${MUTATION_TARGETS.join('|')}>] [--mutate <files>] [--force])`);
  }
  if (opts.mutate && !opts.only) throw new Error('--mutate needs --only <target>: the files belong to one target');
  return opts;
}

/** Counts of a mutation-testing-report-schema report (Stryker's JSON reporter). */
export function countMutants(report: { files: Record<string, { mutants: { status: string }[] }> }, seconds: number): MutationCounts {
  const c = { killed: 0, survived: 0, noCoverage: 0, timeout: 0, mutants: 0 };
  for (const file of Object.values(report.files)) {
    for (const m of file.mutants) {
      c.mutants += 1;
      if (m.status === 'Killed') c.killed += 1;
      else if (m.status === 'Survived') c.survived += 1;
      else if (m.status === 'NoCoverage') c.noCoverage += 1;
      else if (m.status === 'Timeout') c.timeout += 1;
    }
  }
  return { score: scoreOf(c), ...c, seconds };
}

function scoreOf(c: Pick<MutationCounts, 'killed' | 'survived' | 'noCoverage' | 'timeout'>): number {
  const valid = c.killed + c.timeout + c.survived + c.noCoverage;
  return valid === 0 ? 0 : Math.round(((c.killed + c.timeout) / valid) * 10_000) / 100;
}

function runTarget(target: Target, opts: Options): MutationCounts {
  const report = path.join(ROOT, 'tmp', 'mutation', target, 'mutation.json');
  fs.rmSync(report, { force: true });
  const started = Date.now();
  const args = ['stryker', 'run', ...(opts.force ? ['--force'] : []), ...(opts.mutate ? ['--mutate', opts.mutate] : [])];
  // Stryker's progress and survivors go to stderr: stdout carries only the summary.
  const r = spawnSync('npx', args, { cwd: ROOT, env: { ...rawEnv(), STRYKER_TARGET: target }, stdio: ['ignore', 2, 2] });
  const seconds = Math.round((Date.now() - started) / 1000);
  if (r.status !== 0 || !fs.existsSync(report)) throw new Error(`stryker failed for ${target} (exit ${r.status ?? r.signal}); its output is above`);
  return countMutants(JSON.parse(fs.readFileSync(report, 'utf8')), seconds);
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const libraries: Partial<Record<Target, MutationCounts>> = {};
  for (const target of opts.only ? [opts.only] : MUTATION_TARGETS) {
    libraries[target] = runTarget(target, opts);
    if (!opts.json) {
      const c = libraries[target] as MutationCounts;
      console.log(`${target}: score ${c.score} % (${c.killed} killed, ${c.timeout} timeout, ${c.survived} survived, ${c.noCoverage} no coverage of ${c.mutants}) in ${c.seconds} s`);
    }
  }
  const all = Object.values(libraries) as MutationCounts[];
  const sum = (k: keyof MutationCounts) => all.reduce((s, c) => s + c[k], 0);
  const counts = { killed: sum('killed'), survived: sum('survived'), noCoverage: sum('noCoverage'), timeout: sum('timeout') };
  const summary = { libraries, total: { score: scoreOf(counts), ...counts, mutants: sum('mutants'), seconds: sum('seconds') } };
  const line = JSON.stringify(summary);
  fs.mkdirSync(path.join(ROOT, 'tmp', 'mutation'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'tmp', 'mutation', 'summary.json'), line + '\n');
  console.log(line);
}

try {
  main();
} catch (error) {
  console.error(`mutation: ${(error as Error).message}`);
  process.exit(1);
}
