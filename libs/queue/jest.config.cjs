/** Unit tests of queue: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'queue',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
