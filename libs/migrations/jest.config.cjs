/** Unit tests of migrations: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'migrations',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
