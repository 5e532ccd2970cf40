/** Unit tests of native-kernels: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'native-kernels',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
