import { rawEnv } from '@ddae/config';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { FUSED_KERNELS } from '@ddae/diffusion';
import { DEFAULT_BLAS_CANDIDATES, loadAddon } from './addon';
import { unreachable } from './kernels/native-kernel';
import { nativeKernels } from './kernels/register-kernels';

/** The tf backend name under which the native kernels register. */
export const NATIVE_BACKEND = 'native';

/**
 * The pure-JS cpu backend's storage (plain typed arrays in the JS heap, so no 4 GB wasm heap and
 * no copies into the addon) with its hot kernels replaced by native code, one kernel family per
 * file under kernels/ (register-kernels.ts lists them). Every other kernel is the cpu backend's.
 */
class NativeBackend extends MathBackendCPU {}

export interface NativeInfo {
  /** The BLAS library that was loaded, and its build description where it gives one. */
  library: string;
  blasConfig: string;
  /** Threads of BLAS and of the addon's OpenMP loops. */
  threads: number;
  /** The direct convolution kernel's instruction set (avx512, avx2, baseline), or off (DDAE_DIRECT_CONV=0). */
  directConv: string;
}

export interface NativeOptions {
  /** Threads (default DDAE_NATIVE_THREADS, else os.availableParallelism()). */
  threads?: number;
  /** BLAS libraries to try (default DDAE_BLAS_LIBRARY then DEFAULT_BLAS_CANDIDATES). */
  libraries?: string[];
}

let registered: NativeInfo | undefined;

/** Threads from DDAE_NATIVE_THREADS (a positive integer), else every core. */
export function nativeThreadsFromEnv(env: NodeJS.ProcessEnv = rawEnv()): number {
  const raw = env['DDAE_NATIVE_THREADS']?.trim();
  if (!raw) return os.availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`DDAE_NATIVE_THREADS=${raw} must be a positive integer`);
  return n;
}

/**
 * Loads the addon and a BLAS, and registers the `native` tf backend (not selected: call
 * `tf.setBackend(NATIVE_BACKEND)`). Throws with the reason when either is missing. Idempotent.
 */
export function registerNativeBackend(options: NativeOptions = {}): NativeInfo {
  if (registered) return registered;
  const addon = loadAddon();
  const fromEnv = rawEnv()['DDAE_BLAS_LIBRARY']?.trim();
  const libraries = options.libraries ?? [...(fromEnv ? [fromEnv] : []), ...DEFAULT_BLAS_CANDIDATES];
  const info = addon.init(libraries, options.threads ?? nativeThreadsFromEnv());
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(), 0);
  const overrides = nativeKernels(addon);
  for (const config of tf.getKernelsForBackend('cpu')) {
    const fallback = config.kernelFunc;
    const native = overrides.get(config.kernelName);
    tf.registerKernel({
      ...config,
      backendName: NATIVE_BACKEND,
      kernelFunc: native ? (args) => native(args, fallback) ?? fallback(args) : fallback,
    });
  }
  for (const name of Object.values(FUSED_KERNELS)) {
    const fn = overrides.get(name);
    if (!fn) throw new Error(`native kernels: ${name} missing`);
    tf.registerKernel({ kernelName: name, backendName: NATIVE_BACKEND, kernelFunc: (args) => fn(args, () => unreachable(name)) as tf.TensorInfo[] });
  }
  registered = info;
  return info;
}
