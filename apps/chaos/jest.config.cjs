/** Unit tests of chaos: flags and the seeded fault plan, no services. */
module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'chaos',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
