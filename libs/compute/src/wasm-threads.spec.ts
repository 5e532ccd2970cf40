import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng, UNet, conv2d, type UNetModelConfig } from '@ddae/diffusion';
import { selectBackend } from './backend';
import { MAX_WASM_THREADS, wasmThreadsFromEnv } from './wasm-threads';

jest.setTimeout(60_000);

const ROOT = path.resolve(__dirname, '../../..');
const FIXTURE = path.join(__dirname, 'wasm-threads.fixture.ts');

/** Runs the fixture in a fresh node process; it must exit on its own (no process.exit). */
function runFixture(env: Record<string, string>, arg?: string): { status: number | null; signal: string | null; out: Record<string, unknown>; stderr: string } {
  const r = spawnSync(process.execPath, ['-r', '@swc-node/register', FIXTURE, ...(arg ? [arg] : [])], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 45_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return { status: r.status, signal: r.signal, out: line ? (JSON.parse(line) as Record<string, unknown>) : {}, stderr: r.stderr };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('DDAE_WASM_THREADS', () => {
  it('defaults to the available parallelism, capped, and rejects junk', () => {
    expect(wasmThreadsFromEnv({ DDAE_WASM_THREADS: '1' })).toBe(1);
    expect(wasmThreadsFromEnv({ DDAE_WASM_THREADS: ' 3 ' })).toBe(3);
    expect(wasmThreadsFromEnv({ DDAE_WASM_THREADS: '64' })).toBe(MAX_WASM_THREADS);
    const auto = wasmThreadsFromEnv({});
    expect(auto).toBeGreaterThanOrEqual(1);
    expect(auto).toBeLessThanOrEqual(MAX_WASM_THREADS);
    expect(() => wasmThreadsFromEnv({ DDAE_WASM_THREADS: '0' })).toThrow(/DDAE_WASM_THREADS/);
    expect(() => wasmThreadsFromEnv({ DDAE_WASM_THREADS: 'two' })).toThrow(/DDAE_WASM_THREADS/);
  });

  it('=1 gives the single-threaded backend, =2 two threads; both processes exit on their own', () => {
    const single = runFixture({ DDAE_WASM_THREADS: '1' });
    expect(single.stderr).toBe('');
    expect(single.status).toBe(0);
    expect(single.out).toMatchObject({ backend: 'wasm', tfBackend: 'wasm', wasm: { threads: 1 }, sum: 64 * 32 * 128 });
    expect(single.out['detail']).toMatch(/single-threaded/);
    expect((single.out['wasm'] as Record<string, unknown>)['fallbackReason']).toBeUndefined();

    const two = runFixture({ DDAE_WASM_THREADS: '2' });
    expect(two.stderr).toBe('');
    expect(two.status).toBe(0); // not killed by the timeout: the pthread workers did not hold it
    expect(two.out).toMatchObject({ backend: 'wasm', tfBackend: 'wasm', wasm: { threads: 2, simd: true }, sum: 64 * 32 * 128 });
    expect(two.out['detail']).toMatch(/2 threads, simd/);
  });

  it('falls back to single-threaded wasm when the threaded binary cannot start', () => {
    const broken = runFixture({ DDAE_WASM_THREADS: '2' }, 'broken');
    expect(broken.stderr).toBe('');
    expect(broken.status).toBe(0);
    expect(broken.out).toMatchObject({ tfBackend: 'wasm', wasm: { threads: 1 }, sum: 64 * 32 * 128 });
    expect((broken.out['wasm'] as Record<string, unknown>)['fallbackReason']).toMatch(/threaded wasm failed: .*not found/);
  });
});

describe('threaded wasm numerics match the cpu backend', () => {
  const saved = process.env['DDAE_WASM_THREADS'];
  beforeAll(async () => {
    process.env['DDAE_WASM_THREADS'] = '2';
    const selected = await selectBackend('wasm');
    expect(selected.wasm).toMatchObject({ threads: 2, simd: true });
    expect(selected.detail).toMatch(/2 threads, simd/);
  });
  afterAll(() => {
    if (saved === undefined) delete process.env['DDAE_WASM_THREADS'];
    else process.env['DDAE_WASM_THREADS'] = saved;
  });

  /** Runs `f` on threaded wasm, then on cpu, and returns both results. */
  async function both(f: () => Float32Array[]): Promise<[Float32Array[], Float32Array[]]> {
    expect(tf.getBackend()).toBe('wasm');
    const onWasm = f();
    await tf.setBackend('cpu');
    try {
      return [onWasm, f()];
    } finally {
      await tf.setBackend('wasm');
    }
  }

  it('matMul and 3x3 convs (stride 1 and 2)', async () => {
    const rng = new Rng(5);
    const a = rng.normal(96 * 200);
    const b = rng.normal(200 * 72);
    const x = rng.normal(4 * 16 * 16 * 24);
    const w = rng.normal(3 * 3 * 24 * 40).map((v) => v / 15);
    const [wasm, cpu] = await both(() =>
      tf.tidy(() => [
        tf.matMul(tf.tensor2d(a, [96, 200]), tf.tensor2d(b, [200, 72])).dataSync() as Float32Array,
        conv2d(tf.tensor4d(x, [4, 16, 16, 24]), tf.tensor4d(w, [3, 3, 24, 40]), 1, 1).dataSync() as Float32Array,
        conv2d(tf.tensor4d(x, [4, 16, 16, 24]), tf.tensor4d(w, [3, 3, 24, 40]), 2, 1).dataSync() as Float32Array,
      ]),
    );
    expect(maxAbsDiff(wasm[0], cpu[0])).toBeLessThan(1e-3); // |values| ~ 15
    expect(maxAbsDiff(wasm[1], cpu[1])).toBeLessThan(1e-4);
    expect(maxAbsDiff(wasm[2], cpu[2])).toBeLessThan(1e-4);
  });

  it('a UNet forward pass (with taps) and its parameter gradients', async () => {
    const cfg: UNetModelConfig = { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0, groups: 4, imageSize: 8, imageChannels: 1 };
    const unet = new UNet(cfg, 3);
    const rng = new Rng(9);
    const x = rng.normal(4 * 8 * 8);
    const t = Float32Array.from([0.05, 0.3, 0.6, 0.95]);
    const vars = [...unet.params.values()];
    try {
      const [wasm, cpu] = await both(() =>
        tf.tidy(() => {
          const fwd = () => unet.forward(tf.tensor4d(x, [4, 8, 8, 1]), tf.tensor1d(t), { training: false, taps: ['mid_1', 'out_3'] });
          const r = fwd();
          const { grads } = tf.variableGrads(() => tf.mean(tf.square(fwd().output)), vars);
          return [r.output, r.taps['mid_1'], r.taps['out_3'], ...vars.map((v) => grads[v.name])].map((g) => g.dataSync() as Float32Array);
        }),
      );
      expect(maxAbsDiff(wasm[0], cpu[0])).toBeLessThan(1e-4);
      expect(maxAbsDiff(wasm[1], cpu[1])).toBeLessThan(1e-4);
      expect(maxAbsDiff(wasm[2], cpu[2])).toBeLessThan(1e-4);
      for (let i = 3; i < wasm.length; i++) expect(maxAbsDiff(wasm[i], cpu[i])).toBeLessThan(1e-4);
    } finally {
      unet.dispose();
    }
  });
});
