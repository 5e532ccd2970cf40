// Builds the compiled worker (dist/worker) once, when stale, before any e2e file starts: with two
// files running at once, each file's first startStack would otherwise build it at the same time.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

module.exports = async () => {
  execFileSync(process.execPath, ['scripts/build-worker.mjs', '--if-stale', '--quiet'], { cwd: path.resolve(__dirname, '../..'), stdio: ['ignore', 'ignore', 'inherit'] });
};
