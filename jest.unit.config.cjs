/** Every project's unit tests in one run (npm test uses it for one summary); nx runs them per project. */
const fs = require('node:fs');
const path = require('node:path');

const projects = ['apps', 'libs'].flatMap((dir) =>
  fs
    .readdirSync(path.join(__dirname, dir))
    .map((name) => path.join(dir, name, 'jest.config.cjs'))
    .filter((file) => fs.existsSync(path.join(__dirname, file))),
);

module.exports = { projects: projects.map((p) => `<rootDir>/${p}`) };
