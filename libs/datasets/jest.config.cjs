/** Unit tests of datasets: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'datasets',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
