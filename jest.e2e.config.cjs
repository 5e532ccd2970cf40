/**
 * End-to-end tests: real API and worker processes over real Postgres, Redis and data.
 *
 * Two files at a time: each file's stack (its own database, queue prefix, artifact folder, ports,
 * Redis/Postgres servers where a test restarts one) is independent of every other's, and a stack
 * keeps about one core busy (the compute child runs one thread, DDAE_WASM_THREADS and
 * DDAE_NATIVE_THREADS are 1), so on two cores one file at a time leaves the other core mostly idle.
 * `--runInBand` (or E2E_WORKERS=1) still runs one file at a time.
 */
module.exports = {
  ...require('./jest.preset.cjs'),
  displayName: 'e2e',
  rootDir: __dirname,
  roots: ['<rootDir>/apps'],
  testMatch: ['**/*.e2e-spec.ts'],
  testTimeout: 600000,
  maxWorkers: Number(process.env.E2E_WORKERS) || 2,
  // The compiled worker, built once before the files start (not by two of them at once).
  globalSetup: '<rootDir>/apps/e2e/global-setup.cjs',
};
