/** Unit tests of render: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'render',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
