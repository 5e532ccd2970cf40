// Builds libs/native-kernels' N-API addon with node-gyp (npm's own copy: npm sets
// npm_config_node_gyp for install scripts) against Node's installed headers. Optional by design:
// when g++ or the headers are missing it says why and exits 0, and workers fall back to wasm.
// `--strict` (npm run build:native) exits non-zero instead, to see the failure.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const strict = process.argv.includes('--strict');
const dir = path.resolve('libs/native-kernels');
if (!existsSync(path.join(dir, 'binding.gyp'))) process.exit(0);

function nodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  // Outside an npm script: npm's bundled node-gyp next to the npm that runs this Node.
  const candidates = [
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
  ];
  return candidates.find((c) => existsSync(c));
}

const gyp = nodeGyp();
let failure;
if (!gyp) failure = 'node-gyp not found (it ships with npm)';
else {
  // Node's own headers when they are installed (Debian: /usr/include/node), never a download.
  const args = [gyp, 'rebuild', '--jobs', 'max'];
  if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
  const r = spawnSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) failure = `node-gyp failed (exit ${r.status}):\n${(r.stdout + r.stderr).split('\n').slice(-25).join('\n')}`;
}
if (failure) {
  console.warn(`[build-native] native kernels not built; workers will use the wasm backend. ${failure}`);
  process.exit(strict ? 1 : 0);
}
console.log('[build-native] built libs/native-kernels/build/Release/ddae_kernels.node');
