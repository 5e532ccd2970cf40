/** Unit tests of config: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'config',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
