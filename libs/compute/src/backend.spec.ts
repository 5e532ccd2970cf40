import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { Rng, conv2d } from '@ddae/diffusion';
import { backendFromEnv, currentBackend, nodeGpuVerdict, selectBackend } from './backend';

/** Whether an optional package is installed here (what auto's first choices depend on). */
function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

describe('backend selection', () => {
  // CI installs OpenBLAS and npm ci builds the addon: where tfjs-node cannot install (as on CI),
  // auto must find our native kernels, and a missing addon fails this test rather than hiding.
  // CI also has software Vulkan (lavapipe) for the webgpu tests: auto must pass it by, saying why.
  // Where tfjs-node(-gpu) did install, auto must take it (or say it is installed but broken).
  const tfjsNode = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].filter(installed);
  it(`auto picks ${tfjsNode.length ? `${tfjsNode[0]} (installed here)` : 'the native kernels (no tfjs-node here, no hardware GPU)'} and keeps its first choice`, async () => {
    if (tfjsNode.length) {
      const chosen = await selectBackend('auto').then(
        (b) => b.backend,
        (e: Error) => e.message,
      );
      process.stdout.write(`backend.spec: ${tfjsNode.join(' and ')} installed here; auto chose: ${chosen}\n`);
      expect(chosen).toMatch(tfjsNode[0] === '@tensorflow/tfjs-node-gpu' ? /^tensorflow-gpu$|tfjs-node-gpu is installed but failed to load/ : /^tensorflow$|tfjs-node is installed but failed to load/);
      return;
    }
    const first = await selectBackend('auto');
    if (first.backend === 'webgpu') {
      // A hardware adapter: auto prefers it, and names it.
      expect(first.gpu?.fallback).toBe(false);
      return;
    }
    expect(first.backend).toBe('native');
    expect(first.detail).toMatch(/libopenblas/);
    expect(first.detail).toMatch(/@tensorflow\/tfjs-node-gpu absent, webgpu: no hardware adapter \(only software: "llvmpipe[^"]*"; DDAE_BACKEND=webgpu would use it\), @tensorflow\/tfjs-node absent/);
    expect(first.gpu).toBeUndefined();
    expect(tf.getBackend()).toBe('native');
    expect((await selectBackend('cpu')).backend).toBe('native');
    expect((await currentBackend())?.backend).toBe('native');
  });

  // tfjs-node-gpu installs wherever libtensorflow downloads, and loads without CUDA 11.2 (its
  // TensorFlow then logs the library it missed and runs on the CPU): it is taken only when its
  // TensorFlow placed ops on a CUDA device. (Not installable here: this pins the decision.)
  it('takes tfjs-node-gpu only when it computes on a CUDA GPU', () => {
    expect(nodeGpuVerdict('auto', true)).toBe('use');
    expect(nodeGpuVerdict('tensorflow-gpu', true)).toBe('use');
    expect(nodeGpuVerdict('auto', false)).toBe('webgpu-then-cpu');
    expect(nodeGpuVerdict('tensorflow-gpu', false)).toBe('refuse');
  });

  it('reads DDAE_BACKEND', () => {
    expect(backendFromEnv({})).toBe('auto');
    expect(backendFromEnv({ DDAE_BACKEND: 'cpu' })).toBe('cpu');
    expect(backendFromEnv({ DDAE_BACKEND: 'webgpu' })).toBe('webgpu');
    expect(() => backendFromEnv({ DDAE_BACKEND: 'tpu' })).toThrow(/DDAE_BACKEND/);
  });

  // The custom conv gradients are what make training possible on wasm: check them there against
  // the cpu backend's native tf.conv2d gradients.
  it.each([
    { k: 3, stride: 1 as const, pad: 1 },
    { k: 3, stride: 2 as const, pad: 1 },
    { k: 1, stride: 1 as const, pad: 0 },
  ])('conv2d gradients on wasm match native cpu gradients: k=$k stride=$stride', async ({ k, stride, pad }) => {
    setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
    expect(await tf.setBackend('wasm')).toBe(true);
    const rng = new Rng(3);
    const xs = rng.normal(2 * 8 * 8 * 4);
    const ws = rng.normal(k * k * 4 * 6);
    const ys = rng.normal(2 * (8 / stride) * (8 / stride) * 6);
    const yShape: [number, number, number, number] = [2, 8 / stride, 8 / stride, 6];
    const run = (native: boolean): Float32Array[] =>
      tf.tidy(() => {
        const f = (a: tf.Tensor, b: tf.Tensor) => {
          const y = native
            ? tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad === 0 ? 'valid' : [[0, 0], [pad, pad], [pad, pad], [0, 0]])
            : conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad);
          return tf.sum(tf.mul(y, tf.tensor4d(ys, yShape)));
        };
        return tf.grads(f)([tf.tensor4d(xs, [2, 8, 8, 4]), tf.tensor4d(ws, [k, k, 4, 6])]).map((g) => g.dataSync() as Float32Array);
      });
    const onWasm = run(false);
    await tf.setBackend('cpu');
    const reference = run(true);
    await tf.setBackend('wasm');
    for (let i = 0; i < 2; i++) {
      expect(onWasm[i].length).toBe(reference[i].length);
      let maxDiff = 0;
      for (let j = 0; j < reference[i].length; j++) maxDiff = Math.max(maxDiff, Math.abs(onWasm[i][j] - reference[i][j]));
      expect(maxDiff).toBeLessThan(1e-4);
    }
  });
});
