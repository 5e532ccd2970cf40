/** Unit tests of the API client: fast, no services (a local HTTP server stands in for the API). */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'api-client',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
