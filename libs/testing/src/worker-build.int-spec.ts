import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureWorkerBuild } from './process';

const ROOT = path.resolve(__dirname, '../../..');
const DIST = path.join(ROOT, 'dist/worker');
const stamp = () => JSON.parse(readFileSync(path.join(DIST, 'build.json'), 'utf8')) as { hash: string; inputs: string[] };
const mtime = (f: string) => statSync(path.join(DIST, f)).mtimeMs;

describe('the compiled worker (scripts/build-worker.mjs)', () => {
  it('is built from the sources as they are: a source whose content changed makes --if-stale rebuild, an unchanged tree does not', () => {
    ensureWorkerBuild();
    const built = stamp();
    // The hash covers the worker, its compute child and the libraries they bundle.
    for (const f of ['apps/worker/src/main.ts', 'apps/worker/src/compute/compute-child.ts', 'apps/worker/src/compute/compute-process.ts', 'libs/compute/src/index.ts', 'libs/datasets/src/load-dataset.ts', 'scripts/build-worker.mjs']) {
      expect(built.inputs).toContain(f);
    }
    const before = mtime('main.js');
    ensureWorkerBuild();
    expect(mtime('main.js')).toBe(before);

    // As if a source had changed since the build: its recorded hash no longer matches the tree.
    writeFileSync(path.join(DIST, 'build.json'), JSON.stringify({ ...built, hash: 'stale' }));
    ensureWorkerBuild();
    expect(stamp().hash).toBe(built.hash);
    expect(mtime('main.js')).toBeGreaterThan(before);
  });

  it('runs without TypeScript at run time: loading the compiled child loads no .ts file and no @swc-node/register', () => {
    ensureWorkerBuild();
    // Without an IPC channel the child leaves at once (exit 1); what it loaded until then is printed on exit.
    const probe = `process.on('exit', () => { const k = Object.keys(require.cache); console.log(JSON.stringify({ ts: k.filter((f) => /\\.ts$|@swc-node/.test(f)), tfjs: k.some((f) => f.includes('@tensorflow/tfjs-core')) })); }); require(${JSON.stringify(path.join(DIST, 'compute-child.js'))});`;
    const r = spawnSync(process.execPath, ['-e', probe], { cwd: ROOT, encoding: 'utf8' });
    // It got as far as loading TensorFlow.js from node_modules, and compiled nothing on the way.
    expect(JSON.parse(r.stdout.trim())).toEqual({ ts: [], tfjs: true });
  });
});
