/**
 * Run by wasm-threads.spec.ts in a fresh process (`node -r @swc-node/register`): selects the wasm
 * backend under the env it is given, computes something, prints the selection as one JSON line and
 * then simply returns. It never calls process.exit, so the spec also proves that the pthread
 * workers of the threaded backend do not keep a process alive.
 * With the argument `broken`, the threaded backend is installed with a directory lacking its binary,
 * to exercise the fallback to single-threaded wasm.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './backend';
import { installWasmBackend, wasmThreading } from './wasm-threads';

async function main(): Promise<void> {
  let selected: object;
  if (process.argv[2] === 'broken') {
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + path.sep);
    installWasmBackend(wasm, path.join(__dirname, 'no-such-dir'), 2);
    if (!(await tf.setBackend('wasm'))) throw new Error('setBackend(wasm) failed');
    selected = { backend: 'wasm', wasm: wasmThreading() };
  } else {
    selected = await selectBackend('wasm');
  }
  const sum = tf.tidy(() => tf.sum(tf.matMul(tf.ones([64, 128]), tf.ones([128, 32]))).dataSync()[0]);
  process.stdout.write(`${JSON.stringify({ ...selected, tfBackend: tf.getBackend(), sum })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
