#!/usr/bin/env node
// The worker and its compute child as compiled JavaScript, so that no TypeScript is compiled at
// run time (0.6-0.9 s per process with @swc-node/register):
//
//   node scripts/build-worker.mjs             build dist/worker/{main,compute-child}.js
//   node scripts/build-worker.mjs --if-stale  build only when a source the bundles were built
//                                             from changed (a content hash of every input: a few ms)
//
// esbuild bundles our sources (apps/worker, libs/*, the generated Prisma client) and leaves every
// package of node_modules external (loaded from node_modules as it is: native addons, .wasm and
// .node files stay where their packages look for them); swc compiles each TypeScript file on the
// way, as @swc-node/register does, because NestJS needs the decorators' metadata esbuild cannot
// emit. A file's `__dirname` keeps pointing at its source folder (libs/native-kernels finds its
// addon relative to itself). The files are renamed into place, so a worker starting meanwhile sees
// either the old build or the new one. `npm run worker`, scripts/demo.sh and the e2e stack run it
// with --if-stale before starting workers: a worker never runs a stale build.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import esbuild from 'esbuild';
import swc from '@swc/core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'dist', 'worker');
const STAMP = path.join(OUT, 'build.json');
const ENTRIES = { main: 'apps/worker/src/main.ts', 'compute-child': 'apps/worker/src/compute/compute-child.ts' };
/** Read beside the sources: a change to them changes the bundles too. */
const ALWAYS = ['scripts/build-worker.mjs', 'tsconfig.base.json', 'package.json'];
/** Finds compute-child.js beside itself: its __dirname must stay the bundle's. */
const OWN_DIRNAME = new Set(['apps/worker/src/compute/compute-process.ts']);

const args = new Set(process.argv.slice(2));

function hashOf(files) {
  const h = createHash('sha256');
  for (const f of [...files].sort()) {
    h.update(f).update('\0');
    h.update(existsSync(path.join(ROOT, f)) ? readFileSync(path.join(ROOT, f)) : '(missing)').update('\0');
  }
  return h.digest('hex');
}

/** Whether dist/worker was built from the sources as they are now. */
export function fresh() {
  if (!existsSync(STAMP) || !Object.keys(ENTRIES).every((e) => existsSync(path.join(OUT, `${e}.js`)))) return false;
  try {
    const stamp = JSON.parse(readFileSync(STAMP, 'utf8'));
    return stamp.hash === hashOf(stamp.inputs);
  } catch {
    return false;
  }
}

const swcPlugin = {
  name: 'swc-decorators',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const rel = path.relative(ROOT, args.path).split(path.sep).join('/');
      let code = readFileSync(args.path, 'utf8');
      const out = swc.transformSync(code, {
        filename: args.path,
        sourceMaps: 'inline',
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
          target: 'es2022',
          keepClassNames: true,
        },
        module: { type: 'es6' },
      });
      code = out.code;
      if (!OWN_DIRNAME.has(rel) && /\b__dirname\b/.test(code)) {
        const dir = path.relative(OUT, path.dirname(args.path)).split(path.sep).join('/');
        code = `const __source_dirname = require('node:path').resolve(__dirname, ${JSON.stringify(dir)});\n${code.replace(/\b__dirname\b/g, '__source_dirname')}`;
      }
      return { contents: code, loader: 'js', resolveDir: path.dirname(args.path) };
    });
  },
};

async function build() {
  const started = Date.now();
  const tmp = `${OUT}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ENTRIES,
    outdir: tmp,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    packages: 'external',
    tsconfig: path.join(ROOT, 'tsconfig.base.json'),
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    plugins: [swcPlugin],
  });
  const inputs = [...new Set([...Object.keys(result.metafile.inputs), ...ALWAYS])].filter((f) => !f.startsWith('node_modules/'));
  writeFileSync(path.join(tmp, 'build.json'), JSON.stringify({ hash: hashOf(inputs), inputs }, null, 1));
  mkdirSync(OUT, { recursive: true });
  // The child first, the stamp last: a worker that finds the new main.js finds its child.
  const files = ['compute-child.js', 'compute-child.js.map', 'main.js', 'main.js.map', 'build.json'];
  for (const f of files) if (existsSync(path.join(tmp, f))) renameSync(path.join(tmp, f), path.join(OUT, f));
  rmSync(tmp, { recursive: true, force: true });
  if (!args.has('--quiet')) console.error(`[build-worker] dist/worker/{main,compute-child}.js from ${inputs.length} files in ${Date.now() - started} ms`);
}

if (args.has('--if-stale') && fresh()) process.exit(0);
build().catch((error) => {
  console.error(`[build-worker] ${error.message}`);
  process.exit(1);
});
