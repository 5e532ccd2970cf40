/**
 * Multi-threaded TensorFlow.js wasm under Node, enabled at run time (nothing under node_modules is
 * edited, so `npm ci` keeps it working).
 *
 * tfjs-backend-wasm 4.22 never uses its threaded-SIMD binary under Node: the flag
 * `WASM_HAS_MULTITHREAD_SUPPORT` is hard-coded false there (tfjs issue 3830), and forcing it fails
 * because the package hands Emscripten its pthread worker and main script as `blob:` URLs, which
 * Node's worker_threads refuse (ERR_WORKER_PATH). Here the package's own `wasm` backend factory is
 * replaced by one that instantiates the package's threaded-SIMD Emscripten module itself, with the
 * pthread worker script written to a file (a cache dir) and the main script given by its path, and
 * wraps it in the package's own `BackendWasm` (so every registered wasm kernel works unchanged).
 * The XNNPACK thread pool gets an explicit size (the package default assumes SMT: cores / 2).
 * Whatever fails, the replacement factory falls back to the package's original (single-threaded)
 * factory and records why.
 */
import { rawEnv } from '@ddae/config';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** Emscripten keeps this many pthread workers loaded (hard-coded in the 4.22 build); more would need workers loaded while the main thread blocks. */
export const MAX_WASM_THREADS = 8;
/** The wasm backend's priority in tfjs-backend-wasm 4.22 (`WASM_PRIORITY`). */
const WASM_PRIORITY = 2;
const INIT_TIMEOUT_MS = 60_000;

type WasmPackage = typeof import('@tensorflow/tfjs-backend-wasm');

/** The subset of Emscripten's pthread bookkeeping this module touches. */
interface NodeWorkerLike {
  ref(): unknown;
  unref(): unknown;
  terminate(): unknown;
}
interface PThreadLike {
  unusedWorkers: NodeWorkerLike[];
  runningWorkers: NodeWorkerLike[];
  allocateUnusedWorker(): void;
  terminateAllThreads(): void;
}
interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...args: unknown[]) => unknown;
  PThread?: PThreadLike;
  tfjs?: unknown;
}
type WasmImports = Record<string, Record<string, unknown>>;
/** The WebAssembly global (the project's TS lib has no DOM/WebAssembly types). */
interface WebAssemblyApi {
  instantiate(bytes: Uint8Array, imports: WasmImports): Promise<{ instance: unknown; module: unknown }>;
}
const webAssembly = (): WebAssemblyApi => (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
interface FactoryConfig {
  locateFile(file: string, prefix: string): string;
  instantiateWasm(imports: WasmImports, receive: (instance: unknown, module: unknown) => void): object;
  mainScriptUrlOrBlob: string;
  onAbort(reason: unknown): void;
  PThread?: PThreadLike;
}
type EmscriptenFactory = (config: FactoryConfig) => Promise<EmscriptenModule>;

/** How the wasm backend ended up running. */
export interface WasmThreading {
  /** Threads of XNNPACK's pool (1: single-threaded). */
  threads: number;
  /** Whether the binary in use is a SIMD one. */
  simd: boolean;
  /** Why the threaded binary is not in use, when threads were requested but it failed. */
  fallbackReason?: string;
}

/**
 * Threads for the wasm backend: `DDAE_WASM_THREADS` when set (1 = the single-threaded binary),
 * otherwise `os.availableParallelism()`; capped at `MAX_WASM_THREADS`.
 * @throws on a value that is not a positive integer (rather than silently ignoring it)
 */
export function wasmThreadsFromEnv(env: NodeJS.ProcessEnv = rawEnv()): number {
  const raw = env['DDAE_WASM_THREADS']?.trim();
  let n: number;
  if (raw) {
    n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`DDAE_WASM_THREADS=${raw} is not a positive integer`);
  } else {
    n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  return Math.max(1, Math.min(MAX_WASM_THREADS, n));
}

let last: WasmThreading | undefined;

/** How the most recently initialised wasm backend of this process runs; undefined before one was initialised through `installWasmBackend`. */
export function wasmThreading(): WasmThreading | undefined {
  return last;
}

/**
 * Writes the Emscripten pthread worker script to a file (content-addressed in a cache dir, written
 * atomically so concurrent processes agree) and returns its path.
 */
function workerScriptFile(contents: string, version: string): string {
  const hash = createHash('sha256').update(contents).digest('hex').slice(0, 16);
  const candidates = [rawEnv()['DDAE_CACHE_DIR'], path.join(os.homedir(), '.cache', 'ddae'), os.tmpdir()].filter((d): d is string => !!d);
  let lastError: unknown;
  for (const base of candidates) {
    const dir = path.join(base, `tfjs-backend-wasm-${version}`);
    const file = path.join(dir, `threaded-simd.worker.${hash}.js`);
    try {
      if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === contents) return file;
      fs.mkdirSync(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
      fs.writeFileSync(tmp, contents);
      fs.renameSync(tmp, file);
      return file;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`cannot write the wasm pthread worker script: ${(lastError as Error)?.message}`);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    timer.unref();
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/**
 * pthreads are tfjs's compute pool: the main thread blocks in every op while they work, so they
 * never need to keep the process alive. Emscripten ref()s a worker when it starts a pthread on it,
 * which would stop a process from exiting on its own: unref every worker and neutralise ref().
 */
function neverKeepAlive(pthread: PThreadLike): void {
  const neutralise = (w: NodeWorkerLike): void => {
    w.unref();
    w.ref = () => w;
  };
  pthread.unusedWorkers.forEach(neutralise);
  pthread.runningWorkers.forEach(neutralise);
  const allocate = pthread.allocateUnusedWorker.bind(pthread);
  pthread.allocateUnusedWorker = () => {
    allocate();
    const w = pthread.unusedWorkers[pthread.unusedWorkers.length - 1];
    if (w) neutralise(w);
  };
}

/** Instantiates the package's threaded-SIMD Emscripten module with file paths instead of blob: URLs. */
async function instantiateThreaded(wasmDir: string, threads: number): Promise<EmscriptenModule> {
  const mainScript = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const factory = require(mainScript) as EmscriptenFactory;
  const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as { wasmWorkerContents: string };
  if (typeof factory !== 'function' || typeof wasmWorkerContents !== 'string') throw new Error('unexpected layout of @tensorflow/tfjs-backend-wasm/wasm-out');
  const version = (require('@tensorflow/tfjs-backend-wasm/package.json') as { version: string }).version;
  // The package escapes newlines the same way before making its blob (string literals in the script).
  const workerFile = workerScriptFile(wasmWorkerContents.replace(/\n/g, '\\n'), version);
  const wasmBinary = path.join(wasmDir, 'tfjs-backend-wasm-threaded-simd.wasm');
  if (!fs.existsSync(wasmBinary)) throw new Error(`${wasmBinary} not found`);
  let aborted: (reason: Error) => void = () => undefined;
  const abortedP = new Promise<never>((_, reject) => (aborted = reject));
  const config: FactoryConfig = {
    locateFile: (file, prefix) => {
      if (file.endsWith('.worker.js')) return workerFile;
      if (file.endsWith('.wasm')) return wasmBinary;
      return prefix + file;
    },
    // The binary sizes its pool as min(requested, emscripten_num_logical_cores() / 2), assuming
    // SMT; os.cpus() counts vCPUs, so report twice the threads wanted. Only the main thread's
    // static initialisers read it (once).
    instantiateWasm: (imports, receive) => {
      const env = imports['env'] ?? imports['a'];
      if (env && typeof env['emscripten_num_logical_cores'] === 'function') env['emscripten_num_logical_cores'] = () => 2 * threads;
      webAssembly()
        .instantiate(fs.readFileSync(wasmBinary), imports)
        .then(
          (r) => receive(r.instance, r.module),
          (e: unknown) => aborted(new Error(`threaded wasm instantiation failed: ${(e as Error)?.message ?? String(e)}`)),
        );
      return {};
    },
    mainScriptUrlOrBlob: mainScript,
    onAbort: (reason) => aborted(new Error(`threaded wasm aborted: ${String(reason)}`)),
  };
  try {
    const module = await withTimeout(Promise.race([factory(config), abortedP]), INIT_TIMEOUT_MS, 'threaded wasm initialisation');
    if (!module.PThread) throw new Error('threaded wasm module has no PThread');
    return module;
  } catch (err) {
    // Leave no worker thread behind (a half-loaded one would keep the process alive).
    try {
      config.PThread?.terminateAllThreads();
    } catch {
      // best effort
    }
    throw err;
  }
}

/** The same JS <-> wasm bridge as the package's own init(). */
function attachBridge(module: EmscriptenModule): void {
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
}

/**
 * Registers the `wasm` backend factory: threaded SIMD with `threads` threads when `threads > 1`,
 * falling back to the package's own single-threaded factory on any failure. Call before the wasm
 * backend is first initialised (`tf.setBackend('wasm')`); afterwards it is left as it is.
 * After `tf.setBackend('wasm')`, `wasmThreading()` says what is running.
 * @param wasmDir directory holding the package's `.wasm` binaries
 */
export function installWasmBackend(wasmPkg: WasmPackage, wasmDir: string, threads: number): void {
  if (tf.findBackend('wasm')) return; // already initialised: kernels cannot be swapped safely
  const original = tf.findBackendFactory('wasm');
  if (!original) throw new Error('@tensorflow/tfjs-backend-wasm did not register the wasm backend');
  const single = async (fallbackReason?: string): Promise<tf.KernelBackend> => {
    wasmPkg.setThreadsCount(-1); // the package default: the path used before threading existed
    const backend = await original();
    const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
    last = { threads: 1, simd, ...(fallbackReason ? { fallbackReason } : {}) };
    return backend;
  };
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      if (threads <= 1) return single();
      let module: EmscriptenModule | undefined;
      try {
        if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) throw new Error('this runtime lacks wasm SIMD, which the threaded binary needs');
        if (typeof SharedArrayBuffer === 'undefined') throw new Error('SharedArrayBuffer is unavailable');
        module = await instantiateThreaded(wasmDir, threads);
        attachBridge(module);
        neverKeepAlive(module.PThread as PThreadLike);
        wasmPkg.setThreadsCount(threads);
        const backend = new wasmPkg.BackendWasm(module as unknown as ConstructorParameters<WasmPackage['BackendWasm']>[0]);
        // The pool's pthreads started on workers whose ref() is already a no-op; unref once more anyway.
        neverKeepAlive(module.PThread as PThreadLike);
        const actual = wasmPkg.getThreadsCount();
        if (!(actual >= 1)) throw new Error(`XNNPACK reports ${actual} threads`);
        last = { threads: actual, simd: true };
        return backend;
      } catch (err) {
        try {
          module?.PThread?.terminateAllThreads();
        } catch {
          // best effort
        }
        return single(`threaded wasm failed: ${(err as Error)?.message ?? String(err)}`);
      }
    },
    WASM_PRIORITY,
  );
}
