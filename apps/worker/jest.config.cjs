/** Unit tests of worker: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'worker',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
