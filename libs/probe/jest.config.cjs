/** Unit tests of probe: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'probe',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
