import { rawEnv } from '@ddae/config';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BACKENDS, type BackendName, type ComputeDevice, type GpuAdapter, type GpuSelector } from '@ddae/contracts';
import { NATIVE_BACKEND, registerNativeBackend, type NativeInfo } from '@ddae/native-kernels';
import { installWasmBackend, wasmThreading, wasmThreadsFromEnv, type WasmThreading } from './wasm-threads';
import { GpuSelectionError } from './gpu-adapters';
import { gpuPoolMemory, releaseWebGpu, useWebGpu } from './webgpu';

/** The backend this process computes with, once chosen. */
export interface SelectedBackend {
  backend: BackendName;
  /** Human-readable how/why (package, threads, fallback reason). */
  detail: string;
  /** On wasm: its threads (1 = single-threaded) and SIMD; a fallback reason when threads failed. */
  wasm?: WasmThreading;
  /** On native: the BLAS library and threads. */
  native?: NativeInfo;
  /** On webgpu: the adapter (vendor, architecture, fallback or not, limits). */
  gpu?: GpuAdapter;
}

/** Options of `selectBackend`. */
export interface BackendOptions {
  /** The GPU of the webgpu backend (`DDAE_GPU`, see `gpuFromEnv`). Default auto: the one hardware adapter. */
  gpu?: GpuSelector;
}

let selected: Promise<SelectedBackend> | undefined;

const NATIVE: { name: BackendName; pkg: string }[] = [
  { name: 'tensorflow-gpu', pkg: '@tensorflow/tfjs-node-gpu' },
  { name: 'tensorflow', pkg: '@tensorflow/tfjs-node' },
];

function isModuleNotFound(err: unknown, pkg: string): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(pkg);
}

async function tryNative(pkg: string): Promise<'absent' | 'ok'> {
  try {
    // Dynamic require: these optional packages are absent on most machines, and a static import
    // would break bundling and loading everywhere else.
    require(pkg);
  } catch (err) {
    if (isModuleNotFound(err, pkg)) return 'absent';
    // Present but broken (missing libtensorflow, CUDA mismatch): stop here, since loading a
    // second native package floods the log with "kernel already registered" (STACK.md).
    throw new Error(`${pkg} is installed but failed to load: ${(err as Error).message}`);
  }
  const ok = await tf.setBackend('tensorflow');
  if (!ok) throw new Error(`${pkg} loaded but tf.setBackend('tensorflow') failed`);
  await tf.ready();
  return 'ok';
}

/**
 * Loads the wasm backend: threaded SIMD with `wasmThreadsFromEnv()` threads (DDAE_WASM_THREADS,
 * default os.availableParallelism()), or the package's single-threaded path when that is 1 or
 * when the threaded one fails (see wasm-threads.ts).
 */
async function useWasm(): Promise<WasmThreading> {
  const threads = wasmThreadsFromEnv();
  const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  // Under Node the .wasm binaries must be found on disk next to the package's JS.
  const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  wasm.setWasmPaths(dist + path.sep);
  installWasmBackend(wasm, dist, threads);
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('tf.setBackend("wasm") failed');
  await tf.ready();
  return wasmThreading() ?? { threads: 1, simd: false, fallbackReason: 'wasm backend was initialised before selectBackend' };
}

function describeWasm(w: WasmThreading): string {
  const how = w.threads > 1 ? `${w.threads} threads` : 'single-threaded';
  return `@tensorflow/tfjs-backend-wasm, ${how}${w.simd ? ', simd' : ''}${w.fallbackReason ? ` (${w.fallbackReason})` : ''}`;
}

/**
 * webgpu on the adapter `gpu` names. Under `auto` only a hardware adapter counts and a missing
 * Vulkan driver is a reason to go on; a GPU configuration that names nothing (or several GPUs
 * under `auto`) stops the choice, since falling back to the CPU would hide it.
 */
async function tryWebGpu(prefer: BackendName | 'auto', gpu: GpuSelector, reasons: string[]): Promise<SelectedBackend | undefined> {
  try {
    const r = await useWebGpu(gpu, prefer === 'webgpu');
    if ('skip' in r) {
      if (prefer === 'webgpu') throw new GpuSelectionError(`backend webgpu requested but ${r.skip}`);
      reasons.push(`webgpu: ${r.skip}`);
      return undefined;
    }
    return { backend: 'webgpu', detail: `${r.detail}${reasons.length ? `; ${reasons.join(', ')}` : ''}`, gpu: r.adapter };
  } catch (err) {
    if (prefer === 'webgpu' || err instanceof GpuSelectionError) throw err;
    reasons.push(`webgpu unavailable: ${(err as Error).message}`);
    return undefined;
  }
}

/** Why tfjs-node-gpu, loaded, computes on the CPU: its TensorFlow (2.9.1) found no CUDA device. */
export const TFJS_NODE_GPU_NO_CUDA =
  '@tensorflow/tfjs-node-gpu loaded but its TensorFlow found no CUDA GPU (it needs CUDA 11.2 and cuDNN 8.1; its log says which library it could not load), so it would compute on the CPU';

/**
 * What to do once tfjs-node-gpu has loaded, from whether its TensorFlow placed ops on a CUDA device
 * (`isUsingGpuDevice` of tfjs-node's backend): use it (`tensorflow-gpu`); refuse when it was asked
 * for by name (a GPU backend computing on the CPU would be a lie in every result's provenance);
 * under `auto`, look for a hardware GPU through webgpu and otherwise keep its TensorFlow as the CPU
 * backend it is (`tensorflow`: tfjs-node cannot be loaded beside it, STACK.md).
 */
export function nodeGpuVerdict(prefer: BackendName | 'auto', usingGpu: boolean): 'use' | 'refuse' | 'webgpu-then-cpu' {
  if (usingGpu) return 'use';
  return prefer === 'tensorflow-gpu' ? 'refuse' : 'webgpu-then-cpu';
}

async function doSelect(prefer: BackendName | 'auto', options: BackendOptions): Promise<SelectedBackend> {
  tf.enableProdMode();
  const reasons: string[] = [];
  const gpu = options.gpu ?? { kind: 'auto' };
  for (const c of NATIVE) {
    if (prefer === 'auto' && c.name === 'tensorflow') {
      const w = await tryWebGpu(prefer, gpu, reasons);
      if (w) return w;
    }
    if (prefer !== 'auto' && prefer !== c.name) continue;
    const r = await tryNative(c.pkg);
    if (r === 'ok' && c.name === 'tensorflow-gpu') {
      const usingGpu = (tf.backend() as tf.KernelBackend & { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
      const verdict = nodeGpuVerdict(prefer, usingGpu);
      if (verdict === 'refuse') throw new Error(`backend tensorflow-gpu requested but ${TFJS_NODE_GPU_NO_CUDA}: install CUDA 11.2 / cuDNN 8.1, or use DDAE_BACKEND=webgpu`);
      if (verdict === 'webgpu-then-cpu') {
        reasons.push(TFJS_NODE_GPU_NO_CUDA);
        const w = await tryWebGpu(prefer, gpu, reasons);
        if (w) return w;
        if (!(await tf.setBackend('tensorflow'))) throw new Error(`${c.pkg} loaded but tf.setBackend('tensorflow') failed`);
        return { backend: 'tensorflow', detail: `${c.pkg} on the CPU (tf backend "${tf.getBackend()}"); ${reasons.join(', ')}` };
      }
    }
    if (r === 'ok') return { backend: c.name, detail: `${c.pkg} (tf backend "${tf.getBackend()}")` };
    reasons.push(`${c.pkg} absent`);
    if (prefer !== 'auto') throw new Error(`backend ${prefer} requested but ${reasons.join(', ')}`);
  }
  if (prefer === 'webgpu') return (await tryWebGpu(prefer, gpu, reasons)) as SelectedBackend;
  if (prefer === 'auto' || prefer === 'native') {
    try {
      const info = registerNativeBackend();
      if (!(await tf.setBackend(NATIVE_BACKEND))) throw new Error(`tf.setBackend("${NATIVE_BACKEND}") failed`);
      await tf.ready();
      const detail = `ddae native kernels on ${info.library}, ${info.threads} threads, direct conv ${info.directConv}${reasons.length ? `; ${reasons.join(', ')}` : ''}`;
      return { backend: 'native', detail, native: info };
    } catch (err) {
      if (prefer === 'native') throw err;
      reasons.push(`native kernels unavailable: ${(err as Error).message}`);
    }
  }
  if (prefer === 'auto' || prefer === 'wasm') {
    try {
      const w = await useWasm();
      return { backend: 'wasm', detail: `${describeWasm(w)}${reasons.length ? `; ${reasons.join(', ')}` : ''}`, wasm: w };
    } catch (err) {
      if (prefer === 'wasm') throw err;
      reasons.push(`wasm failed: ${(err as Error).message}`);
    }
  }
  const ok = await tf.setBackend('cpu');
  if (!ok) throw new Error('tf.setBackend("cpu") failed');
  await tf.ready();
  return { backend: 'cpu', detail: `pure-JS cpu backend (slow)${reasons.length ? `; ${reasons.join(', ')}` : ''}` };
}

/**
 * Chooses the TensorFlow.js backend ONCE per process: tfjs-node-gpu, webgpu on a hardware adapter
 * (Dawn; see webgpu.ts), tfjs-node, our native kernels (libs/native-kernels: N-API on OpenBLAS),
 * wasm, cpu. Later calls return the first choice whatever they prefer, since kernels cannot be
 * re-registered safely within one process.
 * @param prefer A specific backend (e.g. from `DDAE_BACKEND`), or `auto` (default). `webgpu` may
 *   use a software adapter (Mesa's lavapipe), which `auto` never does.
 */
export function selectBackend(prefer: BackendName | 'auto' = 'auto', options: BackendOptions = {}): Promise<SelectedBackend> {
  if (!selected) {
    selected = doSelect(prefer, options);
    // A failed choice may be retried with another preference.
    selected.catch(() => (selected = undefined));
  }
  return selected;
}

/**
 * The preference named by the env var `DDAE_BACKEND` (`tensorflow-gpu`, `webgpu`, `tensorflow`,
 * `native`, `wasm`, `cpu` or `auto`); `auto` when unset. Throws on an unknown name rather than
 * silently falling back.
 */
export function backendFromEnv(env: NodeJS.ProcessEnv = rawEnv()): BackendName | 'auto' {
  const v = env['DDAE_BACKEND']?.trim();
  if (!v || v === 'auto') return 'auto';
  if ((BACKENDS as readonly string[]).includes(v)) return v as BackendName;
  throw new Error(`DDAE_BACKEND=${v} is not one of auto, ${BACKENDS.join(', ')}`);
}

/**
 * Releases the backend at the end of a process's work: on webgpu the device is destroyed and
 * navigator.gpu dropped (a process holding a Dawn device may not exit), and the next
 * `selectBackend` chooses afresh; on other backends nothing happens (their choice stays).
 */
export async function releaseBackend(): Promise<void> {
  const b = await currentBackend();
  if (b?.backend !== 'webgpu') return;
  releaseWebGpu();
  selected = undefined;
}

/** The backend chosen by `selectBackend`, or undefined before it resolved. */
export async function currentBackend(): Promise<SelectedBackend | undefined> {
  return selected ? selected.catch(() => undefined) : undefined;
}

/**
 * The backend of this process as a result records it: name, description, adapter, and memory now
 * (tf.memory(); on webgpu the GPU buffer bytes in use and allocated by tfjs's buffer pool).
 */
export async function computeDevice(): Promise<ComputeDevice | undefined> {
  const b = await currentBackend();
  if (!b) return undefined;
  const m = tf.memory();
  const pool = gpuPoolMemory();
  return {
    backend: b.backend,
    detail: b.detail,
    ...(b.gpu ? { gpu: b.gpu } : {}),
    memory: {
      numTensors: m.numTensors,
      numBytes: m.numBytes,
      ...(pool.used !== undefined ? { gpuBytesUsed: pool.used } : {}),
      ...(pool.allocated !== undefined ? { gpuBytesAllocated: pool.allocated } : {}),
    },
  };
}

/** Tensors alive in this process and their bytes (tf.memory()): what a warm compute child carries from job to job. */
export function tensorMemory(): { numTensors: number; numBytes: number } {
  const m = tf.memory();
  return { numTensors: m.numTensors, numBytes: m.numBytes };
}
