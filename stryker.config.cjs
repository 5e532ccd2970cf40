// Mutation testing of the core (StrykerJS + its jest runner), one library at a time:
//   npm run -s mutation -- [--json] [--only <target>]      (scripts/mutation.ts sets STRYKER_TARGET)
//   STRYKER_TARGET=sweeps npx stryker run                 (one target by hand)
// Each target runs its own project's unit tests (*.spec.ts, never the integration or e2e configs),
// narrowed to the specs (relative to the project's rootDir) that exercise the mutated files, with per-test coverage so a mutant runs
// only the tests that reach it. Not part of npm test or CI: it takes tens of minutes on 2 cores.
const path = require('node:path');

/**
 * What each target mutates and which unit specs judge it. `mutate` entries may carry a line range
 * (`file:from-to`): the training step of train.ts is mutated, its checkpoint and progress plumbing
 * is not (docs/results.md says why).
 */
const TARGETS = {
  sweeps: {
    jestConfig: 'libs/sweeps/jest.config.cjs',
    specs: ['src/*.spec.ts'],
    // The noise search, the orchestrator's pure decisions (which search, which fine-tuning follows),
    // the planner (planSweep and its small pure functions), the dry run's view of a plan, and the
    // spec's validation (the field path of each refusal, the plan's limits, YAML parse errors).
    mutate: [
      'libs/sweeps/src/noise-search.ts',
      'libs/sweeps/src/orchestrator.ts:31-51',
      'libs/sweeps/src/plan.ts',
      'libs/sweeps/src/plan-view.ts',
      'libs/sweeps/src/validate.ts',
    ],
    // Error and log messages: the specs match them by pattern, and a reworded message is not a wrong decision.
    excludedMutations: ['StringLiteral'],
  },
  probe: {
    jestConfig: 'libs/probe/jest.config.cjs',
    specs: ['src/probe.spec.ts'],
    // Metrics and feature pooling. linear-probe.ts is its own target (below): mutated here, each of
    // its mutants would re-run the wasm training tests of probe.spec.ts (~15 s idle, minutes on the
    // shared 2 cores; docs/results.md).
    mutate: ['libs/probe/src/metrics.ts', 'libs/probe/src/pool-features.ts'],
  },
  'linear-probe': {
    jestConfig: 'libs/probe/jest.config.cjs',
    // The loop against a reference on a few dozen rows, cpu backend: about a second per mutant.
    specs: ['src/linear-probe.spec.ts'],
    mutate: ['libs/probe/src/linear-probe.ts'],
  },
  diffusion: {
    jestConfig: 'libs/diffusion/jest.config.cjs',
    // train.spec.ts is left out: its pretrain tests take ~150 s a run on the cpu backend and would
    // re-run for every mutant of the step; train-step.spec.ts checks the step on a tiny network.
    specs: ['src/schedules.spec.ts', 'src/optimizer.spec.ts', 'src/train-step.spec.ts'],
    mutate: [
      'libs/diffusion/src/schedules.ts',
      'libs/diffusion/src/optimizer.ts',
      // train.ts: micro-batch sizing, EMA decay, batch order, chunked sums (79-168) and the
      // training step itself, loss, accumulation, clipping, warm-up, Adam and EMA (386-507).
      'libs/diffusion/src/train.ts:79-168',
      'libs/diffusion/src/train.ts:389-510',
    ],
  },
  worker: {
    jestConfig: 'apps/worker/jest.config.cjs',
    specs: ['src/core/retry.spec.ts', 'src/core/environment-fault.spec.ts'],
    mutate: ['apps/worker/src/core/retry.ts', 'apps/worker/src/core/environment-fault.ts'],
  },
};

const target = process.env.STRYKER_TARGET;
if (!target || !(target in TARGETS)) {
  throw new Error(`stryker.config.cjs: set STRYKER_TARGET to one of ${Object.keys(TARGETS).join(', ')} (got ${JSON.stringify(target)})`);
}
const t = TARGETS[target];
const reports = path.join('tmp', 'mutation', target);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
module.exports = {
  testRunner: 'jest',
  plugins: ['@stryker-mutator/jest-runner'],
  jest: {
    projectType: 'custom',
    configFile: t.jestConfig,
    config: {
      testMatch: t.specs.map((s) => `<rootDir>/${s}`),
      // The machine is shared: a slow test under load must not read as a killed mutant.
      testTimeout: 120_000,
    },
    enableFindRelatedTests: false,
  },
  coverageAnalysis: 'perTest',
  mutate: t.mutate,
  mutator: { excludedMutations: t.excludedMutations ?? [] },
  concurrency: 1,
  // A mutant that loops (retry's backoff, a search that never ends) is a Timeout, i.e. detected:
  // it must not cost a minute each. Slow tests are covered by the factor over their measured time.
  timeoutMS: 20_000,
  timeoutFactor: 2,
  // Build outputs, run artifacts and docs stay out of the sandbox (node_modules is linked, not copied).
  ignorePatterns: ['/dist', '/tmp', '/artifacts', '/.demo', '/.nx', '/.gpu-check', '/gpu-check-out', '/.whl', '/docs', '/infra', '/coverage'],
  tempDirName: path.join('tmp', 'stryker', target),
  incremental: true,
  incrementalFile: path.join(reports, 'incremental.json'),
  reporters: ['json', 'clear-text', 'progress-append-only'],
  jsonReporter: { fileName: path.join(reports, 'mutation.json') },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
  cleanTempDir: true,
};
