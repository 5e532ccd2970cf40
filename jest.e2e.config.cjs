/** End-to-end tests: real API and worker processes over real Postgres, Redis and data. */
module.exports = {
  ...require('./jest.preset.cjs'),
  displayName: 'e2e',
  rootDir: __dirname,
  roots: ['<rootDir>/apps'],
  testMatch: ['**/*.e2e-spec.ts'],
  testTimeout: 600000,
  maxWorkers: 1,
};
