/** Unit tests of sweeps: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'sweeps',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
