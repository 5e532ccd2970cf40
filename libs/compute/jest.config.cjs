/** Unit tests of compute: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'compute',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
