import path from 'node:path';
import { build, stop, type Plugin } from 'esbuild';

/**
 * The page's API client (page-client.ts: libs/api-client and the contracts' zod schemas) as one
 * minified browser script, built with esbuild's API in memory when the API starts, once per process.
 *
 * Why at start and not a build step: the API runs from TypeScript (`npm run api`, scripts/demo.sh,
 * the image's CMD, the tests' createApiApp) and nothing builds before it, so a file under dist/
 * would be one more thing a clean clone, the image and every test harness must remember to build,
 * and a stale one would serve a client older than the contracts the API answers with. Built at
 * start, the page always carries the contracts the API itself runs, for about a second of boot
 * (1.0-1.4 s measured on the 2-core dev machine at load average 15), overlapping the rest of it.
 * It makes esbuild a runtime dependency of the API (package.json `dependencies`).
 */
let pending: Promise<string> | undefined;

export function pageClientScript(): Promise<string> {
  pending ??= bundle().catch((error: unknown) => {
    pending = undefined;
    throw error;
  });
  return pending;
}

const ENTRY = path.join(__dirname, 'page-client.ts');

/**
 * zod's `z` namespace re-exports its ~40 error-message locales, which no bundler can drop (half of
 * the bundle, ~260 KB): the page keeps English only, the locale zod configures by default. Should
 * zod move the file, this matches nothing and the bundle is merely bigger.
 */
const englishOnly: Plugin = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) => (args.importer.includes(`${path.sep}zod${path.sep}`) ? { path: path.join(path.dirname(args.importer), args.path), namespace: 'zod-en' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'zod-en' }, (args) => ({ contents: "export { default as en } from './en.js';", resolveDir: path.dirname(args.path) }));
  },
};

async function bundle(): Promise<string> {
  let text: string;
  try {
    const result = await build({
      entryPoints: [ENTRY],
      bundle: true,
      write: false,
      format: 'iife',
      globalName: 'ddaeApi',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
      plugins: [englishOnly],
    });
    text = result.outputFiles[0].text;
  } catch (error) {
    throw new Error(`cannot bundle the web page's API client (${ENTRY}): ${(error as Error).message}`);
  } finally {
    // Built once per process: esbuild's service (a Go child process, tens of MB) is not kept for the API's lifetime.
    await stop();
  }
  // Inlined in <script>: either sequence would end or derail the element before the code does.
  if (/<\/script|<!--/i.test(text)) throw new Error(`the web page's API client bundle contains "</script" or "<!--": it cannot be inlined`);
  return text;
}
