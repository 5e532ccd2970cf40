import * as tf from '@tensorflow/tfjs';
import { adamIsFused, adamStep, conv2dBias, DiT, FUSED_KERNELS, fusedAdamEma, type AdamSlot, fusedConvAdd, fusedGroupNorm, hasFusedAdamEma, hasFusedConvAdd, hasFusedGroupNorm, Rng } from '@ddae/diffusion';
import { NATIVE_BACKEND, registerNativeBackend } from './backend';

/**
 * Every native kernel against the pure-JS cpu backend (the reference), values and gradients, on
 * small odd shapes. Needs the addon and a BLAS: CI installs libopenblas0 (scripts/ensure-services.sh)
 * and npm ci builds the addon, so a missing one fails here rather than being skipped.
 */
describe('native backend', () => {
  beforeAll(async () => {
    const info = registerNativeBackend({ threads: 2 });
    // The direct convolution is on unless DDAE_DIRECT_CONV=0, so the tests below exercise it.
    expect(info.directConv).toMatch(process.env['DDAE_DIRECT_CONV'] === '0' ? /^off$/ : /^(avx512|avx2|baseline)$/);
    expect(await tf.setBackend(NATIVE_BACKEND)).toBe(true);
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  /** Runs f on the cpu backend and on the native one; returns both results as plain arrays. */
  function both(f: () => tf.Tensor | tf.Tensor[]): { cpu: Float32Array[]; native: Float32Array[]; shapes: number[][][] } {
    const run = (backend: string) => {
      tf.setBackend(backend);
      return tf.tidy(() => {
        const r = f();
        const list = Array.isArray(r) ? r : [r];
        return { values: list.map((t) => t.dataSync() as Float32Array), shapes: list.map((t) => t.shape) };
      });
    };
    const cpu = run('cpu');
    const native = run(NATIVE_BACKEND);
    expect(native.shapes).toEqual(cpu.shapes);
    return { cpu: cpu.values, native: native.values, shapes: [cpu.shapes, native.shapes] };
  }

  function expectClose(a: Float32Array[], b: Float32Array[], tol = 1e-4): void {
    expect(a.length).toBe(b.length);
    a.forEach((x, i) => {
      expect(x.length).toBe(b[i].length);
      let worst = 0;
      let scale = 1e-6;
      for (let j = 0; j < x.length; j++) {
        worst = Math.max(worst, Math.abs(x[j] - b[i][j]));
        scale = Math.max(scale, Math.abs(b[i][j]));
      }
      expect(worst / Math.max(1, scale)).toBeLessThan(tol);
    });
  }

  const data = (shape: number[], seed: number) => tf.tensor(new Rng(seed).normal(shape.reduce((p, d) => p * d, 1)), shape);

  it.each([
    { k: 3, stride: 1, pad: 1, cin: 3, cout: 5 },
    { k: 3, stride: 2, pad: 1, cin: 4, cout: 6 },
    { k: 1, stride: 1, pad: 0, cin: 7, cout: 2 },
    { k: 3, stride: 1, pad: 0, cin: 1, cout: 4 },
    // Multiples of 16 output channels take the direct kernel (register tiles of 8 px x 16 ch and
    // 4 px x 32 ch; width 7 leaves a partial tile).
    { k: 3, stride: 1, pad: 1, cin: 3, cout: 32 },
    { k: 3, stride: 2, pad: 1, cin: 5, cout: 16 },
    { k: 3, stride: 1, pad: 0, cin: 2, cout: 48 },
    { k: 3, stride: 1, pad: 1, cin: 17, cout: 64 },
  ])('conv2d and both gradients match the cpu backend: k=$k stride=$stride pad=$pad', ({ k, stride, pad, cin, cout }) => {
    const x = data([3, 9, 7, cin], 1);
    const w = data([k, k, cin, cout], 2);
    const padArg = pad === 0 ? 'valid' : ([[0, 0], [pad, pad], [pad, pad], [0, 0]] as [[0, 0], [number, number], [number, number], [0, 0]]);
    const { cpu, native } = both(() => {
      const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, padArg);
      const probe = data(y.shape, 3);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, padArg), probe)))([x, w]);
      return [y, ...g];
    });
    expectClose(native, cpu);
  });

  it.each([4, 16])('conv2d with "same" padding and stride 2 on even sizes (asymmetric padding), %i output channels', (cout) => {
    const x = data([2, 8, 6, 3], 4);
    const w = data([3, 3, 3, cout], 5);
    const { cpu, native } = both(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))))([x, w]));
    expectClose(native, cpu);
  });

  it.each([1, 2])('fused conv2d + bias (stride %i) and its gradients match', (stride) => {
    const x = data([2, 7, 7, 3], 24);
    const w = data([3, 3, 3, 5], 25);
    const b = data([5], 26);
    const { cpu, native } = both(() => {
      const f = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => tf.fused.conv2d({ x: xi as tf.Tensor4D, filter: wi as tf.Tensor4D, bias: bi, strides: stride, pad: 'same' });
      return [f(x, w, b), ...tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.square(f(xi, wi, bi))))([x, w, b])];
    });
    expectClose(native, cpu);
  });

  it.each([
    { shape: [2, 3, 4], perm: [2, 0, 1] },
    { shape: [2, 3, 4, 5], perm: [0, 2, 1, 3] },
    { shape: [6, 7], perm: [1, 0] },
  ])('transpose $shape by $perm', ({ shape, perm }) => {
    const { cpu, native } = both(() => tf.transpose(data(shape, 27), perm));
    expectClose(native, cpu);
  });

  it('softmax over the last axis, and its gradient', () => {
    const x = tf.mul(data([3, 4, 7], 31), 5);
    const probe = data([3, 4, 7], 32);
    const { cpu, native } = both(() => [tf.softmax(x), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.softmax(a), probe)))(x)]);
    expectClose(native, cpu, 1e-5);
  });

  it('mean over spatial axes (the feature pooling)', () => {
    const { cpu, native } = both(() => [tf.mean(data([2, 4, 4, 3], 28), [1, 2]), tf.mean(data([3, 5], 29)), tf.mean(data([2, 4, 4, 3], 30), 3, true)]);
    expectClose(native, cpu);
  });

  it.each([
    { a: [5, 3], b: [3, 4], ta: false, tb: false },
    { a: [3, 5], b: [3, 4], ta: true, tb: false },
    { a: [5, 3], b: [4, 3], ta: false, tb: true },
    { a: [2, 5, 3], b: [2, 3, 4], ta: false, tb: false },
    { a: [2, 5, 3], b: [3, 4], ta: false, tb: false },
    { a: [5, 3], b: [2, 3, 4], ta: false, tb: false },
    { a: [2, 3, 5], b: [2, 4, 3], ta: true, tb: true },
  ])('matMul $a x $b (transposeA=$ta, transposeB=$tb) matches', ({ a, b, ta, tb }) => {
    const { cpu, native } = both(() => tf.matMul(data(a, 6), data(b, 7), ta, tb));
    expectClose(native, cpu);
  });

  it.each([
    [[2, 3, 4], [2, 3, 4]],
    [[2, 3, 4], [4]],
    [[2, 3, 4], [3, 1]],
    [[2, 1, 4], [2, 3, 1]],
    [[1], [2, 3]],
    [[], [2, 3]],
    [[2, 5, 5, 6], [2, 1, 1, 6]],
  ])('add, sub, mul, div broadcast %j with %j', (sa, sb) => {
    const a = data(sa, 8);
    const b = tf.add(tf.abs(data(sb, 9)), 0.5);
    const { cpu, native } = both(() => [tf.add(a, b), tf.sub(a, b), tf.mul(a, b), tf.div(a, b), tf.sub(b, a)]);
    expectClose(native, cpu);
  });

  it.each([
    { shape: [2, 3, 4, 5], axis: [0, 1, 2], keep: false },
    { shape: [2, 3, 4, 5], axis: [3], keep: true },
    { shape: [2, 3, 4, 5], axis: [1], keep: false },
    { shape: [2, 3, 4, 5], axis: [0, 2], keep: true },
    { shape: [6], axis: [0], keep: false },
  ])('sum over $axis of $shape (keepDims $keep)', ({ shape, axis, keep }) => {
    const { cpu, native } = both(() => tf.sum(data(shape, 10), axis, keep));
    expectClose(native, cpu);
  });

  it.each([0, 1, 2, 3])('concat and split along axis %i (the gradient of concat is a split)', (axis) => {
    const a = data([2, 3, 4, 5], 17);
    const sizes = [2, 3, 4, 5];
    const bShape = [2, 3, 4, 5];
    bShape[axis] = sizes[axis] + 1;
    const b = data(bShape, 18);
    const { cpu, native } = both(() => {
      const c = tf.concat([a, b], axis);
      return [c, ...tf.split(c, [1, c.shape[axis] - 1], axis), ...tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.concat([x, y], axis))))([a, b])];
    });
    expectClose(native, cpu);
  });

  it('int32 arithmetic falls back to the cpu kernels', () => {
    const { cpu, native } = both(() => tf.cast(tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.scalar(4, 'int32')), 'float32'));
    expect(Array.from(native[0])).toEqual([5, 6, 7]);
    expectClose(native, cpu);
  });

  it.each([false, true])('fused GroupNorm (silu %s) matches the composite, values and gradients', (silu) => {
    tf.setBackend(NATIVE_BACKEND);
    expect(hasFusedGroupNorm()).toBe(true);
    const x = tf.add(tf.mul(data([2, 5, 3, 8], 11), 3), 1);
    const gamma = data([8], 12);
    const beta = data([8], 13);
    const probe = data([2, 5, 3, 8], 14);
    const composite = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const xr = tf.reshape(xi, [2, 5, 3, 4, 2]);
      const { mean, variance } = tf.moments(xr, [1, 2, 4], true);
      const y = tf.add(tf.mul(tf.reshape(tf.mul(tf.sub(xr, mean), tf.rsqrt(tf.add(variance, 1e-5))), [2, 5, 3, 8]), g), b);
      return silu ? tf.mul(y, tf.sigmoid(y)) : y;
    };
    const loss = (f: (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), probe));
    tf.setBackend(NATIVE_BACKEND);
    const fused = tf.tidy(() => {
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => fusedGroupNorm(a as tf.Tensor4D, b, c, { groups: 4, eps: 1e-5, silu });
      return [f(x, gamma, beta), ...tf.grads(loss(f))([x, gamma, beta])].map((t) => t.dataSync() as Float32Array);
    });
    tf.setBackend('cpu');
    const reference = tf.tidy(() => [composite(x, gamma, beta), ...tf.grads(loss(composite))([x, gamma, beta])].map((t) => t.dataSync() as Float32Array));
    expectClose(fused, reference, 1e-4);
  });

  it.each([
    { what: 'per-image addend (time embedding)', k: 3, stride: 1 as const, pad: 1, addend: 'image' },
    { what: 'full addend (residual)', k: 3, stride: 1 as const, pad: 1, addend: 'full' },
    { what: 'full addend, stride 2', k: 3, stride: 2 as const, pad: 1, addend: 'full' },
    { what: 'per-image addend, 1x1', k: 1, stride: 1 as const, pad: 0, addend: 'image' },
    { what: 'per-image addend, direct kernel', k: 3, stride: 1 as const, pad: 1, addend: 'image', cout: 32 },
    { what: 'full addend, direct kernel', k: 3, stride: 1 as const, pad: 1, addend: 'full', cout: 16 },
  ])('the fused conv + bias + addend equals conv2dBias then add, values and gradients: $what', ({ k, stride, pad, addend, cout = 5 }) => {
    const x = data([3, 7, 6, 4], 40);
    const w = data([k, k, 4, cout], 41);
    const b = data([cout], 42);
    const [ho, wo] = [Math.floor((7 + 2 * pad - k) / stride) + 1, Math.floor((6 + 2 * pad - k) / stride) + 1];
    const a = data(addend === 'image' ? [3, 1, 1, cout] : [3, ho, wo, cout], 43);
    const probe = data([3, ho, wo, cout], 44);
    const loss = (f: (...t: tf.Tensor[]) => tf.Tensor) => (...t: tf.Tensor[]) => tf.sum(tf.mul(f(...t), probe));
    const composite = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor, ai: tf.Tensor) => tf.add(conv2dBias(xi as tf.Tensor4D, wi as tf.Tensor4D, bi as tf.Tensor1D, stride, pad), ai);
    tf.setBackend(NATIVE_BACKEND);
    expect(hasFusedConvAdd()).toBe(true);
    const fused = tf.tidy(() => {
      const f = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor, ai: tf.Tensor) => fusedConvAdd(xi as tf.Tensor4D, wi as tf.Tensor4D, bi, ai as tf.Tensor4D, { stride, pad });
      return [f(x, w, b, a), ...tf.grads(loss(f))([x, w, b, a])].map((t) => t.dataSync() as Float32Array);
    });
    tf.setBackend('cpu');
    const reference = tf.tidy(() => [composite(x, w, b, a), ...tf.grads(loss(composite))([x, w, b, a])].map((t) => t.dataSync() as Float32Array));
    expectClose(fused, reference, 1e-4);
  });

  it('the fused conv + addend refuses an addend of any other shape', () => {
    tf.setBackend(NATIVE_BACKEND);
    const x = data([2, 5, 5, 3], 45);
    const w = data([3, 3, 3, 4], 46);
    expect(() => fusedConvAdd(x as tf.Tensor4D, w as tf.Tensor4D, data([4], 47), data([2, 5, 1, 4], 48) as tf.Tensor4D, { stride: 1, pad: 1 })).toThrow(/unsupported shapes.*addend \[2,5,1,4\]/);
  });

  it('the fused Adam + EMA step equals the composite update', () => {
    tf.setBackend(NATIVE_BACKEND);
    expect(hasFusedAdamEma()).toBe(true);
    const [p, g, m, e] = [19, 20, 21, 22].map((seed) => data([7, 3], seed));
    const v = tf.abs(data([7, 3], 23));
    const h = { gradScale: 0.7, lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, bc1: 1 - 0.9 ** 3, bc2: 1 - 0.999 ** 3, decay: 0.95 };
    const fused = fusedAdamEma(p, g, m, v, e, h).map((t) => t.dataSync() as Float32Array);
    const gs = tf.mul(g, h.gradScale);
    const m2 = tf.add(tf.mul(m, h.b1), tf.mul(gs, 1 - h.b1));
    const v2 = tf.add(tf.mul(v, h.b2), tf.mul(tf.square(gs), 1 - h.b2));
    const p2 = tf.sub(p, tf.mul(tf.div(tf.div(m2, h.bc1), tf.add(tf.sqrt(tf.div(v2, h.bc2)), h.eps)), h.lr));
    const e2 = tf.add(tf.mul(e, h.decay), tf.mul(p2, 1 - h.decay));
    expectClose(fused, [p2, m2, v2, e2].map((t) => t.dataSync() as Float32Array), 1e-6);
    expect(tf.getKernel(FUSED_KERNELS.adamEma, 'cpu')).toBeUndefined();
  });

  it('runs a DiT (patchify, attention, LayerNorm, GELU, adaLN) as the cpu backend does: output, taps and every gradient', () => {
    const cfg = { backbone: 'dit' as const, depth: 2, width: 16, heads: 2, patch: 2 as const, mlpRatio: 2, imageSize: 8, imageChannels: 1 };
    const x = new Rng(3).normal(3 * 64);
    const made: DiT[] = [];
    const { cpu, native } = both(() => {
      const dit = new DiT(cfg, 5);
      made.push(dit);
      // The zero-initialised modulation and output layers get values, so every path carries a gradient.
      const rng = new Rng(9);
      for (const [name, v] of dit.params) if (name.includes('adaln') || name.startsWith('final')) v.assign(tf.tensor(rng.normal(v.size), v.shape).mul(0.1));
      const vars = [...dit.params.values()];
      const input = tf.tensor4d(x, [3, 8, 8, 1]);
      const t = tf.tensor1d([0.1, 0.5, 0.9]);
      const r = dit.forward(input, t, { training: false, taps: ['blk_1', 'blk_2'] });
      const { grads } = tf.variableGrads(() => tf.mean(tf.square(dit.forward(input, t, { training: true }).output)) as tf.Scalar, vars);
      return [r.output, r.taps['blk_1'], r.taps['blk_2'], ...vars.map((v) => grads[v.name])];
    });
    const paramCount = made[0].params.size;
    made.forEach((d) => d.dispose());
    expect(cpu).toHaveLength(3 + paramCount);
    expectClose(native, cpu, 1e-4);
  });

  it.each(['corrected', 'folded'] as const)('adamStep (%s epsilon) on native matches the cpu backend over 3 steps (the corrected form as the fused kernel)', (epsilon) => {
    const run = (backend: string) => {
      tf.setBackend(backend);
      const shapes = [[6, 5], [5], [1, 10]];
      const slots: AdamSlot[] = shapes.map((shape, k) => ({
        param: tf.variable(data(shape, 60 + k)),
        m: tf.variable(tf.zeros(shape)),
        v: tf.variable(tf.zeros(shape)),
        ...(epsilon === 'corrected' ? { ema: tf.variable(data(shape, 60 + k)) } : {}),
      }));
      expect(adamIsFused(epsilon)).toBe(backend === NATIVE_BACKEND && epsilon === 'corrected');
      for (let step = 1; step <= 3; step++) {
        const grads = shapes.map((shape, k) => data(shape, 70 + 3 * step + k));
        adamStep(slots, grads, { step, lr: 1e-2, gradScale: epsilon === 'corrected' ? 0.6 : undefined, emaDecay: 0.9, epsilon });
        tf.dispose(grads);
      }
      const out = slots.flatMap((s) => [s.param, s.m, s.v, ...(s.ema ? [s.ema] : [])].map((t) => t.dataSync() as Float32Array));
      tf.dispose(slots.flatMap((s) => [s.param, s.m, s.v, ...(s.ema ? [s.ema] : [])]));
      return out;
    };
    const native = run(NATIVE_BACKEND);
    const cpu = run('cpu');
    expectClose(native, cpu, 1e-6);
    if (epsilon === 'folded') expect(native).toEqual(cpu);
    tf.setBackend(NATIVE_BACKEND);
  });

  it('leaks no tensors through a conv gradient', () => {
    tf.setBackend(NATIVE_BACKEND);
    const x = data([2, 6, 6, 3], 15);
    const w = data([3, 3, 3, 4], 16);
    const step = () =>
      tf.tidy(() => {
        tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')))([x, w]);
      });
    step(); // the first call caches tf's own constants
    const before = tf.memory().numTensors;
    step();
    step();
    expect(tf.memory().numTensors).toBe(before);
  });
});
