/** Integration tests: real PostgreSQL (and Redis), `*.int-spec.ts` under apps/ and libs/, one at a time. */
module.exports = {
  ...require('./jest.preset.cjs'),
  displayName: 'integration',
  rootDir: __dirname,
  roots: ['<rootDir>/apps', '<rootDir>/libs'],
  testMatch: ['**/*.int-spec.ts'],
  testTimeout: 60000,
  maxWorkers: 1,
};
