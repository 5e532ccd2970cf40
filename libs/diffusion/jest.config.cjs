/** Unit tests of diffusion: fast, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'diffusion',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
