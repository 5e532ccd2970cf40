import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Method, PretrainTask, TrainLossPoint } from '@ddae/contracts';
import { loadDataset, seededOrder, type LabeledImages } from '@ddae/datasets';
import { ADAM, FUSED_KERNELS, adamStep, fusedClipScale, fusedConvAdd, fusedGroupNorm, hasFusedAdamEmaScaled, hasFusedClipScale, hasFusedConvAdd, hasFusedGroupNorm, hasFusedAdamEmaInPlace, hasFusedMatMulBias, matMulBias, type AdamSlot } from '@ddae/diffusion';
import { DeviceLimitError, NonFiniteLossError, StoppedError, createTrainer, extractFeatures, loadForInference, pretrain, readCheckpointData, sampleUNet, sumScalars } from '@ddae/diffusion';
import { trainLinearProbes } from '@ddae/probe';
import { releaseBackend, selectBackend, type SelectedBackend } from './backend';
import { adamInPlaceSlots, planClipScale, planFilterGradChunks } from './webgpu-kernels';
import { runBaselineTask } from './baseline.task';
import { imagesAt16, maxDiff, onCpu } from './webgpu.fixture';

/**
 * The webgpu backend on every clean clone: Dawn on Mesa's lavapipe (software Vulkan, installed by
 * scripts/ensure-services.sh), asked for with DDAE_BACKEND=webgpu as CI does. Lavapipe is slow,
 * so shapes are tiny: the tiny UNet on 16x16 Fashion-MNIST (the 32x32 input averaged 2x2), batch
 * 8, at most 3 steps, at most 64 feature images.
 *
 * What is deterministic: one adapter and driver give the same results run after run (tfjs-webgpu's
 * kernels reduce in a fixed order; no atomics), so a run killed and resumed ends exactly where the
 * uninterrupted one does (asserted within 1e-6; measured bit-identical). Across backends the order of float operations
 * differs: webgpu matches the CPU within the tolerances below, and another GPU or driver may round
 * differently within the same tolerances. The CPU reference is our native backend (tfjs's pure-JS
 * cpu backend gives the same steps within 1e-5 but takes minutes for them on CI's 2 cores).
 */
jest.setTimeout(600_000);

const SIZE = 16;
const SHAPE = { imageSize: SIZE, imageChannels: 1 };
const TRAIN = 64;
const FEATURES = 32;
/** Adam's learning rate here: its first steps move a weight by about this much each. */
const LR = 2e-3;
/** Largest difference of a loss between webgpu and the CPU, step for step (measured 1.2e-6 DDPM, 1.9e-6 EDM). */
const LOSS_TOL = 1e-4;
/**
 * Largest difference of a weight or EMA weight after the steps: a quarter of one Adam step (Adam
 * divides by sqrt(v), so a weight whose gradient is near zero amplifies rounding; measured 8.2e-5
 * DDPM after 3 steps, 2.7e-5 EDM after 2).
 */
const WEIGHT_TOL = LR / 4;
/** Largest difference of a pooled feature between webgpu and the CPU (features are O(1); measured 1.2e-6). */
const FEATURE_TOL = 1e-4;

/** The Conv2DBackpropFilter kernel of the current backend (what conv2d's gradient calls). */
function filterGrad(x: tf.Tensor, dy: tf.Tensor, filterShape: [number, number, number, number], strides: number, pad: 'same' | 'valid'): tf.Tensor {
  return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides, pad, dataFormat: 'NHWC', filterShape } as never) as tf.Tensor;
}

/**
 * How many dispatches `fn` records on the webgpu backend: tfjs-webgpu's programs and our own
 * multi-output ones both count them in the backend's dispatchCountInPass (reset at each submit).
 */
function countDispatches<T>(fn: () => T): { result: T; dispatches: number } {
  const backend = tf.backend() as unknown as { dispatchCountInPass: number };
  let value = backend.dispatchCountInPass;
  let dispatches = 0;
  Object.defineProperty(backend, 'dispatchCountInPass', {
    configurable: true,
    get: () => value,
    set: (v: number) => {
      if (v > value) dispatches += v - value;
      value = v;
    },
  });
  try {
    return { result: fn(), dispatches };
  } finally {
    Object.defineProperty(backend, 'dispatchCountInPass', { configurable: true, writable: true, enumerable: true, value });
  }
}

describe('webgpu backend (Dawn on lavapipe)', () => {
  let root: string;
  let selected: SelectedBackend;
  let images: Float32Array;
  let train: LabeledImages;
  let test: LabeledImages;
  let counter = 0;
  /** The DDPM runs of 3 steps of the first training test, on each backend (reused by later tests). */
  const ddpm: { webgpu?: string; cpu?: string } = {};

  const task = (over: Partial<PretrainTask> = {}): PretrainTask => ({
    kind: 'pretrain',
    runId: 'webgpu',
    method: 'ddpm',
    unet: { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4 },
    dataset: { name: 'fashion-mnist' },
    steps: 3,
    batchSize: 8,
    learningRate: LR,
    warmupSteps: 0,
    gradClip: 1,
    emaDecayCap: 0.9999,
    checkpointEvery: 3,
    seed: 0,
    checkpointDir: path.join(root, `run-${counter++}`),
    ...over,
  });

  const run = async (t: PretrainTask): Promise<{ losses: number[]; checkpoint: string }> => {
    const points: TrainLossPoint[] = [];
    const out = await pretrain(t, images, TRAIN, { trainLoss: (p) => points.push(p) }, { ...SHAPE, lossEvery: 1 });
    expect(points.map((p) => p.step)).toEqual(Array.from({ length: t.steps }, (_, i) => i + 1));
    return { losses: points.map((p) => p.loss), checkpoint: out.finalCheckpoint.path };
  };

  beforeAll(async () => {
    selected = await selectBackend('webgpu');
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-webgpu-'));
    [train, test] = await Promise.all([loadDataset('fashion-mnist', 'train'), loadDataset('fashion-mnist', 'test')]);
    images = imagesAt16(train, seededOrder(train.count, 0).subarray(0, TRAIN));
  });

  afterAll(async () => {
    await releaseBackend();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('is chosen when asked for, on the software adapter, which it names with its limits', () => {
    expect(selected.backend).toBe('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    expect(selected.gpu).toMatchObject({ index: 0, api: 'vulkan', fallback: true });
    expect(selected.gpu?.name).toMatch(/llvmpipe/);
    expect(selected.gpu?.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(selected.detail).toMatch(/GPU 0 "llvmpipe.*software adapter.*max binding \d+ MiB/);
    // One tfjs-core: the webgpu backend registered its kernels in the engine our code uses.
    const core = (from: string) => require.resolve('@tensorflow/tfjs-core', { paths: [path.dirname(require.resolve(from))] });
    expect(core('@tensorflow/tfjs-backend-webgpu')).toBe(core('@tensorflow/tfjs'));
    // Our chunked weight gradient replaced tfjs-webgpu's (webgpu-kernels.ts).
    expect(tf.getKernel('Conv2DBackpropFilter', 'webgpu')?.kernelFunc.name).toBe('ddaeConv2DBackpropFilter');
  });

  it('sums every parameter norm in chunks (one addN over them would be dropped by the device)', async () => {
    const xs = Array.from({ length: 150 }, (_, i) => tf.scalar(i + 1));
    const s = sumScalars(xs);
    expect((await s.data())[0]).toBe((150 * 151) / 2);
    tf.dispose([s, ...xs]);
  });

  it("computes a convolution's weight gradient with our chunked kernel, equal to a direct sum and to the CPU's", async () => {
    // The UNet's convolutions: 3x3 same, the 3x3 stride-2 downsampling, 1x1 skips, plus valid padding.
    const cases: { x: [number, number, number, number]; f: [number, number, number, number]; stride: number; pad: 'same' | 'valid' }[] = [
      { x: [3, 8, 8, 4], f: [3, 3, 4, 8], stride: 1, pad: 'same' },
      { x: [2, 9, 7, 3], f: [3, 3, 3, 5], stride: 2, pad: 'same' },
      { x: [4, 6, 6, 6], f: [1, 1, 6, 4], stride: 1, pad: 'valid' },
      { x: [2, 7, 7, 2], f: [3, 3, 2, 3], stride: 1, pad: 'valid' },
    ];
    const plans: number[] = [];
    for (const c of cases) {
      const x = tf.randomNormal(c.x, 0, 1, 'float32', 1);
      const info = tf.backend_util.computeConv2DInfo(c.x, c.f, c.stride, 1, c.pad);
      const dy = tf.randomNormal([c.x[0], info.outHeight, info.outWidth, c.f[3]], 0, 1, 'float32', 2);
      const dw = filterGrad(x, dy, c.f, c.stride, c.pad);
      const [xs, dys, got] = await Promise.all([x.data(), dy.data(), dw.data()]);
      // The direct sum, written out: dW[kh,kw,ci,co] = sum over b, yR, yC of x[b, yR*s+kh-top, yC*s+kw-left, ci] * dy[b, yR, yC, co].
      const [B, H, W, C] = c.x;
      const [KH, KW, , CO] = c.f;
      const want = new Float32Array(got.length);
      for (let kh = 0; kh < KH; kh++)
        for (let kw = 0; kw < KW; kw++)
          for (let ci = 0; ci < C; ci++)
            for (let co = 0; co < CO; co++) {
              let sum = 0;
              for (let b = 0; b < B; b++)
                for (let yR = 0; yR < info.outHeight; yR++)
                  for (let yC = 0; yC < info.outWidth; yC++) {
                    const xR = yR * c.stride + kh - info.padInfo.top;
                    const xC = yC * c.stride + kw - info.padInfo.left;
                    if (xR < 0 || xR >= H || xC < 0 || xC >= W) continue;
                    sum += xs[((b * H + xR) * W + xC) * C + ci] * dys[((b * info.outHeight + yR) * info.outWidth + yC) * CO + co];
                  }
              want[((kh * KW + kw) * C + ci) * CO + co] = sum;
            }
      expect(maxDiff(got, want)).toBeLessThan(1e-4);
      const cpu = await onCpu(async () => {
        const [xc, dyc] = [tf.tensor(xs, c.x), tf.tensor(dys, dy.shape)];
        const out = filterGrad(xc, dyc, c.f, c.stride, c.pad);
        const values = await out.data();
        tf.dispose([xc, dyc, out]);
        return values;
      });
      expect(maxDiff(got, cpu)).toBeLessThan(1e-4);
      plans.push(planFilterGradChunks(B, info.outHeight, c.f.reduce((p, d) => p * d, 1)).chunks);
      tf.dispose([x, dy, dw]);
    }
    // The sums above really were split: several chunks, each added in order by the second dispatch.
    expect(Math.min(...plans)).toBeGreaterThan(1);
  });

  it('takes an Adam + EMA step as our fused kernel, one dispatch per parameter, the clipping scale a tensor, equal to the formula', async () => {
    expect(hasFusedAdamEmaScaled()).toBe(true);
    const n = 1000;
    const rand = (seed: number, lo = -1) => Float32Array.from({ length: n }, (_, i) => lo + (1 - lo) * (0.5 + 0.5 * Math.sin(i * 12.9898 + seed * 78.233)));
    const [p0, g0, m0, v0, e0] = [rand(1), rand(2), rand(3), rand(4, 0), rand(5)];
    const slot = (withEma: boolean): AdamSlot => ({
      param: tf.variable(tf.tensor(p0)),
      m: tf.variable(tf.tensor(m0)),
      v: tf.variable(tf.tensor(v0)),
      ...(withEma ? { ema: tf.variable(tf.tensor(e0)) } : {}),
    });
    const slots = [slot(true), slot(false)];
    const grad = tf.tensor(g0);
    const scale = tf.scalar(0.5);
    const [lr, step, decay] = [1e-2, 3, 0.9];
    // Each variable shares its buffer with the tensor it was made from (still alive): never written in place, so this is the out-of-place step.
    const { dispatches } = countDispatches(() => adamStep(slots, [grad, grad], { step, lr, gradScale: scale, emaDecay: decay }));
    // One dispatch per parameter writes all its outputs (the adapter binds the 10 storage buffers it needs; the H200 binds 16).
    expect(selected.gpu?.limits.maxStorageBuffersPerShaderStage).toBeGreaterThanOrEqual(10);
    expect(dispatches).toBe(2);
    const { beta1: b1, beta2: b2, epsilon: eps } = ADAM;
    const want = { p: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n), e: new Float32Array(n) };
    for (let i = 0; i < n; i++) {
      const g = g0[i] * 0.5;
      want.m[i] = m0[i] * b1 + g * (1 - b1);
      want.v[i] = v0[i] * b2 + g * g * (1 - b2);
      want.p[i] = p0[i] - (want.m[i] / (1 - b1 ** step) / (Math.sqrt(want.v[i] / (1 - b2 ** step)) + eps)) * lr;
      want.e[i] = e0[i] * decay + want.p[i] * (1 - decay);
    }
    for (const s of slots) {
      expect(maxDiff(await s.param.data(), want.p)).toBeLessThan(1e-6);
      expect(maxDiff(await s.m.data(), want.m)).toBeLessThan(1e-6);
      expect(maxDiff(await s.v.data(), want.v)).toBeLessThan(1e-6);
    }
    expect(maxDiff(await (slots[0].ema as tf.Variable).data(), want.e)).toBeLessThan(1e-6);
    tf.dispose([grad, scale, ...slots.flatMap((s) => [s.param, s.m, s.v, ...(s.ema ? [s.ema] : [])])]);
  });

  it('updates several parameters per dispatch in place (Adam + EMA), only buffers nothing else holds, equal to the formula', async () => {
    expect(hasFusedAdamEmaInPlace()).toBe(true);
    const limit = selected.gpu?.limits.maxStorageBuffersPerShaderStage as number;
    // 16 storage buffers (lavapipe, the H200): 3 parameters per dispatch with or without an EMA.
    expect([adamInPlaceSlots(limit, true), adamInPlaceSlots(limit, false)]).toEqual([3, 3]);
    const sizes = [1000, 7, 64, 1, 300, 2000, 33, 5, 128];
    const withEma = (k: number) => k < 5;
    const rand = (n: number, seed: number, lo = -1) => Float32Array.from({ length: n }, (_, i) => lo + (1 - lo) * (0.5 + 0.5 * Math.sin(i * 12.9898 + seed * 78.233)));
    const init = sizes.map((n, k) => ({ p: rand(n, 10 * k + 1), g: rand(n, 10 * k + 2), m: rand(n, 10 * k + 3), v: rand(n, 10 * k + 4, 0), e: rand(n, 10 * k + 5) }));
    // Each variable alone on its buffer (the tensor it was made from disposed by tidy) ...
    const own = (x: Float32Array) => tf.tidy(() => tf.variable(tf.tensor(x)));
    const slots: AdamSlot[] = init.map((x, k) => ({ param: own(x.p), m: own(x.m), v: own(x.v), ...(withEma(k) ? { ema: own(x.e) } : {}) }));
    // ... but for slot 1, whose EMA starts as the parameter's own buffer (as the trainer's does: ema.assign(param)).
    tf.dispose(slots[1].ema as tf.Variable);
    slots[1].ema = tf.variable(slots[1].param);
    init[1].e = init[1].p;
    // Slot 2's parameter was read (a CPU copy kept), slot 3's is being read: the second may not be written in place.
    expect(Array.from(await slots[2].param.data())).toEqual(Array.from(init[2].p));
    const reading = slots[3].param.data();
    // Slot 4's parameter is also held by another tensor (a clone shares its dataId), which must keep the old values.
    const snapshot = slots[4].param.clone();
    const grads = init.map((x) => tf.tensor(x.g));
    const scale = tf.scalar(0.5);
    const [lr, decay] = [1e-2, 0.9];
    const want = (x: (typeof init)[number], step: number) => {
      const { beta1: b1, beta2: b2, epsilon: eps } = ADAM;
      const n = x.p.length;
      const out = { p: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n), e: new Float32Array(n), g: x.g };
      for (let i = 0; i < n; i++) {
        const g = x.g[i] * 0.5;
        out.m[i] = x.m[i] * b1 + g * (1 - b1);
        out.v[i] = x.v[i] * b2 + g * g * (1 - b2);
        out.p[i] = x.p[i] - (out.m[i] / (1 - b1 ** step) / (Math.sqrt(out.v[i] / (1 - b2 ** step)) + eps)) * lr;
        out.e[i] = x.e[i] * decay + out.p[i] * (1 - decay);
      }
      return out;
    };
    const ids = () => slots.map((s) => [s.param, s.m, s.v, ...(s.ema ? [s.ema] : [])].map((t) => t.dataId));
    const check = async (expected: ReturnType<typeof want>[]) => {
      for (const [k, s] of slots.entries()) {
        const got = [await s.param.data(), await s.m.data(), await s.v.data()];
        [expected[k].p, expected[k].m, expected[k].v].forEach((w, j) => expect([k, j, maxDiff(got[j], w) < 1e-6]).toEqual([k, j, true]));
        if (s.ema) expect([k, 'ema', maxDiff(await s.ema.data(), expected[k].e) < 1e-6]).toEqual([k, 'ema', true]);
      }
    };
    const before = ids();
    const first = countDispatches(() => adamStep(slots, grads, { step: 3, lr, gradScale: scale, emaDecay: decay }));
    // Out of place: slots 1 (its EMA is its parameter), 3 (read in flight) and 4 (shared), one dispatch each; in place: 2 with an EMA (0, 2) and 4 without (5-8), 3 per dispatch.
    expect(first.dispatches).toBe(3 + 1 + 2);
    const after = ids();
    slots.forEach((_, k) => expect([k, after[k].map((id, j) => id === before[k][j])]).toEqual([k, after[k].map(() => ![1, 3, 4].includes(k))]));
    expect(Array.from(await snapshot.data())).toEqual(Array.from(init[4].p));
    snapshot.dispose();
    // The read in flight returns the values it was issued for; every later read the new ones (no stale CPU copy).
    expect(Array.from(await reading)).toEqual(Array.from(init[3].p));
    const step3 = init.map((x) => want(x, 3));
    await check(step3);
    // Next step: every buffer now exclusively owned (the reads above are done): 2 + 2 dispatches for 9 parameters.
    const again = countDispatches(() => adamStep(slots, grads, { step: 4, lr, gradScale: scale, emaDecay: decay }));
    expect(again.dispatches).toBe(4);
    expect(ids()).toEqual(after);
    await check(step3.map((x) => want(x, 4)));
    tf.dispose([scale, ...grads, ...slots.flatMap((s) => [s.param, s.m, s.v, ...(s.ema ? [s.ema] : [])])]);
  });

  it('computes the global-norm clipping scale of many gradients in a few dispatches, equal to the composite ops on the CPU', async () => {
    expect(hasFusedClipScale()).toBe(true);
    // 40 tensors: several full dispatches and a partial last one, sizes below one workgroup's
    // 256 threads up to several workgroups per input (70,000 > 256 x 16 x 16).
    const shapes = Array.from({ length: 40 }, (_, i) => [[1], [7], [3, 100], [5000], [10, 7000], [3, 3, 4, 8]][i % 6]);
    const values = shapes.map((s, k) => Float32Array.from({ length: s.reduce((p, d) => p * d, 1) }, (_, i) => Math.sin(i * 0.37 + k) * (1 + (k % 3))));
    const composite = (xs: tf.Tensor[], clip: number) => tf.tidy(() => tf.minimum(1, tf.div(clip, tf.add(tf.sqrt(tf.addN(xs.map((x) => tf.sum(tf.square(x))))), 1e-6))));
    const before = tf.memory().numTensors;
    for (const clip of [1, 1e9]) {
      const xs = values.map((v, k) => tf.tensor(v, shapes[k]));
      const { result: scale, dispatches } = countDispatches(() => fusedClipScale(xs, clip));
      const again = fusedClipScale(xs, clip);
      const [got, gotAgain] = [(await scale.data())[0], (await again.data())[0]];
      expect(scale.shape).toEqual([]);
      const limit = selected.gpu?.limits.maxStorageBuffersPerShaderStage as number;
      expect(dispatches).toBe(planClipScale(values.map((v) => v.length), limit).dispatches);
      expect(dispatches).toBeLessThanOrEqual(Math.ceil(40 / Math.min(15, limit - 1)) + 1);
      // Fixed-order sums: the same inputs give the same bits.
      expect(gotAgain).toBe(got);
      const want = await onCpu(async () => {
        const cs = values.map((v, k) => tf.tensor(v, shapes[k]));
        const out = composite(cs, clip);
        const value = (await out.data())[0];
        tf.dispose([...cs, out]);
        return value;
      });
      // clip 1: the norm is about 400, so the scale carries it (relative error of float32 sums of ~600k terms).
      if (clip === 1) expect(want).toBeLessThan(0.01);
      else expect(want).toBe(1);
      expect(Math.abs(got - want) / want).toBeLessThan(1e-5);
      tf.dispose([...xs, scale, again]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs conv2d + bias + addend as one dispatch, values and gradients equal to the composite ops on the CPU', async () => {
    expect(hasFusedConvAdd()).toBe(true);
    // One case per program tfjs-webgpu picks: tiled conv (vec4 and scalar), im2col + split-K
    // matmul, and the 1x1 matmuls (reduce and packed); per-image and full-output addends.
    const cases: { x: [number, number, number, number]; w: [number, number, number, number]; stride: 1 | 2; pad: number; perImage: boolean }[] = [
      { x: [4, 16, 16, 8], w: [3, 3, 8, 8], stride: 1, pad: 1, perImage: true },
      { x: [4, 16, 16, 3], w: [3, 3, 3, 5], stride: 1, pad: 1, perImage: false },
      { x: [2, 6, 6, 4], w: [3, 3, 4, 8], stride: 2, pad: 1, perImage: true },
      { x: [2, 4, 4, 6], w: [1, 1, 6, 4], stride: 1, pad: 0, perImage: false },
      { x: [4, 16, 16, 8], w: [1, 1, 8, 16], stride: 1, pad: 0, perImage: true },
    ];
    const before = tf.memory().numTensors;
    for (const c of cases) {
      const info = tf.backend_util.computeConv2DInfo(c.x, c.w, c.stride, 1, c.pad === 0 ? 'valid' : c.pad);
      const [n, ho, wo, co] = info.outShape;
      const aShape: [number, number, number, number] = c.perImage ? [n, 1, 1, co] : [n, ho, wo, co];
      const val = (len: number, seed: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * 0.61 + seed) + 0.3 * Math.cos(i * 1.7));
      const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
      const [xv, wv, bv, av, dyv] = [val(size(c.x), 1), val(size(c.w), 2), val(co, 3), val(size(aShape), 4), val(n * ho * wo * co, 5)];
      const pad = c.pad === 0 ? 'valid' : ([[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]);
      const run = async (fused: boolean) => {
        const [x, w, b, a, dy] = [tf.tensor4d(xv, c.x), tf.tensor4d(wv, c.w), tf.tensor1d(bv), tf.tensor4d(av, aShape), tf.tensor4d(dyv, [n, ho, wo, co])];
        const f = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor, ai: tf.Tensor) =>
          fused ? fusedConvAdd(xi as tf.Tensor4D, wi as tf.Tensor4D, bi, ai as tf.Tensor4D, { stride: c.stride, pad: c.pad }) : tf.add(tf.add(tf.conv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, c.stride, pad), bi), ai);
        const { result: y, dispatches } = countDispatches(() => tf.tidy(() => f(x, w, b, a)));
        const grads = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor, ai: tf.Tensor) => tf.sum(tf.mul(f(xi, wi, bi, ai), dy)))([x, w, b, a]);
        const out = await Promise.all([y, ...grads].map((t) => t.data()));
        tf.dispose([x, w, b, a, dy, y, ...grads]);
        return { out, dispatches };
      };
      const gpu = await run(true);
      const cpu = await onCpu(() => run(false));
      // The 3x3 tiled conv is one dispatch (bias and addend in its epilogue); im2col and split-K add theirs.
      if (c.w[0] === 3 && c.stride === 1) expect(gpu.dispatches).toBe(1);
      // Relative to the largest value of each (dw sums up to 1,024 products; measured at most 3.3e-7): float32 rounding in another order.
      ['y', 'dx', 'dw', 'dbias', 'daddend'].forEach((name, i) => {
        const scale = Math.max(1, ...Array.from(cpu.out[i], Math.abs));
        expect([JSON.stringify(c), name, maxDiff(gpu.out[i], cpu.out[i]) / scale < 1e-5]).toEqual([JSON.stringify(c), name, true]);
      });
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs a dense layer (matMul + bias) as one dispatch, values and gradients equal to the composite ops on the CPU', async () => {
    expect(hasFusedMatMulBias()).toBe(true);
    // The shapes tfjs-webgpu picks a program by: a time embedding's [N, C] rows (the reduce and
    // small-output programs) and a DiT's tokens [N*L, D] (the packed one).
    const cases: { x: [number, number]; w: [number, number] }[] = [
      { x: [2, 32], w: [32, 128] },
      { x: [2, 48], w: [48, 48] },
      { x: [4, 128], w: [128, 32] },
      { x: [128, 48], w: [48, 192] },
    ];
    const before = tf.memory().numTensors;
    for (const c of cases) {
      const val = (len: number, seed: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * 0.61 + seed) + 0.3 * Math.cos(i * 1.7));
      const [xv, wv, bv, dyv] = [val(c.x[0] * c.x[1], 1), val(c.w[0] * c.w[1], 2), val(c.w[1], 3), val(c.x[0] * c.w[1], 4)];
      const run = async () => {
        const [x, w, b, dy] = [tf.tensor2d(xv, c.x), tf.tensor2d(wv, c.w), tf.tensor1d(bv), tf.tensor2d(dyv, [c.x[0], c.w[1]])];
        const { result: y, dispatches } = countDispatches(() => tf.tidy(() => matMulBias(x, w, b)));
        // The kernels it runs (tf.profile also lists the ops that wrap them, named `...__op`).
        const profile = await tf.profile(() => tf.tidy(() => void matMulBias(x, w, b)));
        const grads = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(matMulBias(xi as tf.Tensor2D, wi, bi), dy)))([x, w, b]);
        const out = await Promise.all([y, ...grads].map((t) => t.data()));
        tf.dispose([x, w, b, dy, y, ...grads]);
        return { out, dispatches, kernels: profile.kernels.map((k) => k.name).filter((k) => !['Reshape', 'Identity'].includes(k) && !k.endsWith('__op')) };
      };
      const gpu = await run();
      const cpu = await onCpu(run);
      // webgpu: the bias in the product's epilogue, one dispatch.
      expect(gpu.kernels).toEqual(['_FusedMatMul']);
      expect(gpu.dispatches).toBe(1);
      // The native backend keeps its BLAS matMul (the cpu backend's _FusedMatMul would compose a JavaScript one).
      expect(cpu.kernels).toEqual(['BatchMatMul', 'Add']);
      // Relative to the largest value of each (dw sums 128 products): float32 rounding in another order.
      ['y', 'dx', 'dw', 'db'].forEach((name, i) => {
        const scale = Math.max(1, ...Array.from(cpu.out[i], Math.abs));
        expect([JSON.stringify(c), name, maxDiff(gpu.out[i], cpu.out[i]) / scale < 1e-5]).toEqual([JSON.stringify(c), name, true]);
      });
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs GroupNorm (+ SiLU) forward and backward as our kernels, equal to the composite ops on the CPU', async () => {
    expect(hasFusedGroupNorm()).toBe(true);
    const composite = (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number, act: boolean): tf.Tensor => {
      const [n, h, w, c] = x.shape;
      const xr = tf.reshape(x, [n, h, w, groups, c / groups]);
      const { mean, variance } = tf.moments(xr, [1, 2, 4], true);
      const y = tf.add(tf.mul(tf.reshape(tf.mul(tf.sub(xr, mean), tf.rsqrt(tf.add(variance, 1e-5))), [n, h, w, c]), gamma), beta);
      return act ? tf.mul(y, tf.sigmoid(y)) : y;
    };
    // Group sizes below, at and above one workgroup's 256 threads (the reduction's strides).
    const cases: { shape: [number, number, number, number]; groups: number }[] = [
      { shape: [2, 4, 4, 8], groups: 4 },
      { shape: [3, 5, 3, 6], groups: 2 },
      { shape: [2, 16, 16, 8], groups: 2 },
    ];
    for (const { shape, groups } of cases) {
      for (const act of [true, false]) {
        const size = shape.reduce((p, d) => p * d, 1);
        const xv = Float32Array.from({ length: size }, (_, i) => 2 * Math.sin(i * 0.731) + 0.5);
        const dyv = Float32Array.from({ length: size }, (_, i) => Math.cos(i * 0.377));
        const gv = Float32Array.from({ length: shape[3] }, (_, i) => 1 + 0.1 * i);
        const bv = Float32Array.from({ length: shape[3] }, (_, i) => 0.05 * i - 0.1);
        const run = async (fused: boolean) => {
          const [x, dy, gamma, beta] = [tf.tensor4d(xv, shape), tf.tensor4d(dyv, shape), tf.tensor1d(gv), tf.tensor1d(bv)];
          const f = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) =>
            tf.sum(tf.mul(fused ? fusedGroupNorm(xi as tf.Tensor4D, gi, bi, { groups, eps: 1e-5, silu: act }) : composite(xi as tf.Tensor4D, gi, bi, groups, act), dy));
          const { result: y, dispatches } = countDispatches(() => (fused ? fusedGroupNorm(x, gamma, beta, { groups, eps: 1e-5, silu: act }) : composite(x, gamma, beta, groups, act)));
          // Ours: statistics and normalisation in one dispatch.
          if (fused) expect(dispatches).toBe(1);
          if (fused) {
            // The gradient: every sum (per image and group, dgamma and dbeta per channel) in one dispatch, then dx.
            const attrs = { groups, eps: 1e-5, silu: act } as unknown as tf.NamedAttrMap;
            const [yk, mean, rstd] = tf.engine().runKernel(FUSED_KERNELS.groupNorm, { x, gamma, beta }, attrs) as tf.Tensor[];
            const back = countDispatches(() => tf.engine().runKernel(FUSED_KERNELS.groupNormGrad, { dy, x, gamma, beta, mean, rstd }, attrs) as tf.Tensor[]);
            expect(back.dispatches).toBe(2);
            tf.dispose([yk, mean, rstd, ...back.result]);
          }
          const grads = tf.grads(f)([x, gamma, beta]);
          const out = await Promise.all([y, ...grads].map((t) => t.data()));
          tf.dispose([x, dy, gamma, beta, y, ...grads]);
          return out;
        };
        const gpu = await run(true);
        const cpu = await onCpu(() => run(false));
        const names = ['y', 'dx', 'dgamma', 'dbeta'];
        gpu.forEach((values, i) => expect([names[i], maxDiff(values, cpu[i]) < 2e-4]).toEqual([names[i], true]));
      }
    }
  });

  it('trains DDPM and EDM step for step like the CPU (native) backend', async () => {
    for (const method of ['ddpm', 'edm'] as Method[]) {
      const steps = method === 'ddpm' ? 3 : 2;
      const before = tf.memory().numTensors;
      const gpu = await run(task({ method, steps, checkpointEvery: steps }));
      expect(tf.memory().numTensors).toBe(before);
      const cpu = await onCpu(() => run(task({ method, steps, checkpointEvery: steps })));
      if (method === 'ddpm') Object.assign(ddpm, { webgpu: gpu.checkpoint, cpu: cpu.checkpoint });
      expect(maxDiff(gpu.losses, cpu.losses)).toBeLessThan(LOSS_TOL);
      const [g, c] = [readCheckpointData(gpu.checkpoint), readCheckpointData(cpu.checkpoint)];
      expect(maxDiff(g.weights, c.weights)).toBeLessThan(WEIGHT_TOL);
      expect(maxDiff(g.ema, c.ema)).toBeLessThan(WEIGHT_TOL);
      // The steps moved the weights: the comparison is not between two copies of the initialisation.
      const init = readCheckpointData((await onCpu(() => pretrain(task({ method, steps: 0 }), images, TRAIN, {}, SHAPE))).finalCheckpoint.path);
      expect(maxDiff(g.weights, init.weights)).toBeGreaterThan(LR);
    }
  });

  it('trains a DiT step for step like the CPU (native) backend (its dense layers fused matMul + bias on webgpu)', async () => {
    const dit = { depth: 2, width: 16, heads: 2, patch: 4, mlpRatio: 2 };
    const t = () => task({ unet: undefined, dit, steps: 2, checkpointEvery: 2 });
    const before = tf.memory().numTensors;
    const gpu = await run(t());
    expect(tf.memory().numTensors).toBe(before);
    const cpu = await onCpu(() => run(t()));
    expect(maxDiff(gpu.losses, cpu.losses)).toBeLessThan(LOSS_TOL);
    const [g, c] = [readCheckpointData(gpu.checkpoint), readCheckpointData(cpu.checkpoint)];
    expect(maxDiff(g.weights, c.weights)).toBeLessThan(WEIGHT_TOL);
    expect(maxDiff(g.ema, c.ema)).toBeLessThan(WEIGHT_TOL);
    const init = readCheckpointData((await onCpu(() => pretrain({ ...t(), steps: 0 }, images, TRAIN, {}, SHAPE))).finalCheckpoint.path);
    expect(maxDiff(g.weights, init.weights)).toBeGreaterThan(LR);
  });

  it('resumes a killed run exactly where the uninterrupted one ends', async () => {
    const t = task({ checkpointEvery: 1 });
    let stop = false;
    // Stopped after its first checkpoint (as a cancelled or shut-down worker is), then resumed.
    const stopped = await pretrain(t, images, TRAIN, { checkpoint: () => (stop = true), shouldStop: () => stop }, SHAPE).catch((e: unknown) => e);
    expect(stopped).toBeInstanceOf(StoppedError);
    expect((stopped as StoppedError).checkpoint.step).toBe(1);
    const resumed = await pretrain(t, images, TRAIN, {}, SHAPE);
    const [a, b] = [readCheckpointData(ddpm.webgpu as string), readCheckpointData(resumed.finalCheckpoint.path)];
    // Measured bit-identical on lavapipe: same adapter, same kernels, same order.
    expect(maxDiff(a.weights, b.weights)).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(a.ema, b.ema)).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(a.optimizer, b.optimizer)).toBeLessThanOrEqual(1e-6);
  });

  it('extracts features that match the CPU, from checkpoints trained on either backend, and probes them alike', async () => {
    const trainIdx = seededOrder(train.count, 7).subarray(0, FEATURES);
    const testIdx = Uint32Array.from({ length: FEATURES }, (_, i) => i);
    const [trainX, testX] = [imagesAt16(train, trainIdx), imagesAt16(test, testIdx)];
    const layers = ['out_1', 'out_4'];
    // Trained on webgpu, probed on cpu; trained on cpu, probed on webgpu (and each on its own).
    for (const checkpoint of [ddpm.webgpu as string, ddpm.cpu as string]) {
      const features = async () => {
        const { unet } = loadForInference(checkpoint);
        try {
          const a = await extractFeatures(unet, 'ddpm', trainX, FEATURES, 100, layers, { pooling: 'avg2', noiseKeys: trainIdx, batchSize: 16 });
          const b = await extractFeatures(unet, 'ddpm', testX, FEATURES, 100, layers, { pooling: 'avg2', noiseSeed: 1, noiseKeys: testIdx, batchSize: 16 });
          const dims = layers.map((l) => a[l].length / FEATURES);
          const probe = await trainLinearProbes(
            { n: FEATURES, y: Uint8Array.from(trainIdx, (i) => train.labels[i]), dims, epoch: () => layers.map((l) => a[l]) },
            layers.map((l, k) => ({ x: b[l], y: Uint8Array.from(testIdx, (i) => test.labels[i]), n: FEATURES, dim: dims[k] })),
            { epochs: 3, batchSize: 16, learningRate: 3e-3, seed: 0, standardize: true, classes: 10 },
          );
          return { a, probe };
        } finally {
          unet.dispose();
        }
      };
      const gpu = await features();
      const cpu = await onCpu(features);
      for (const l of layers) expect(maxDiff(gpu.a[l], cpu.a[l])).toBeLessThan(FEATURE_TOL);
      // The same features give the same probe up to a prediction or two of rounding.
      gpu.probe.forEach((r, k) => expect(Math.abs(r.accuracy - cpu.probe[k].accuracy)).toBeLessThanOrEqual(2 / FEATURES));
    }
  });

  it('runs the pixel baseline, the untrained network and both samplers', async () => {
    const protocol = { pooling: 'gap' as const, noise: 'fixed' as const, noiseSeed: 0, probe: 'fast' as const, epochs: 2, batchSize: 32, learningRate: 1e-3, standardize: true, trainSize: 64, testSize: 64, probeSeed: 0 };
    const baseline = () => runBaselineTask({ kind: 'baseline', baselineId: 'b', baseline: 'pixels', dataset: { name: 'fashion-mnist' }, protocol });
    const [gpu, cpu] = [await baseline(), await onCpu(baseline)];
    expect(Math.abs(gpu.accuracy - cpu.accuracy)).toBeLessThanOrEqual(2 / 64);
    const untrained = await pretrain(task({ steps: 0 }), images, TRAIN, {}, SHAPE);
    expect(untrained.steps).toBe(0);
    for (const method of ['ddpm', 'edm'] as Method[]) {
      // The model is loaded on the backend that samples (moving tensors between backends would need a synchronous read).
      const sample = async () => {
        const { unet } = loadForInference(untrained.finalCheckpoint.path);
        try {
          return await sampleUNet(unet, method, { n: 4, steps: 2, seed: 3, batchSize: 4 });
        } finally {
          unet.dispose();
        }
      };
      const [g, c] = [await sample(), await onCpu(sample)];
      expect(g).toHaveLength(4 * SIZE * SIZE);
      expect(maxDiff(g, c)).toBeLessThan(1e-3);
    }
  });

  it('leaks no tensor per step and keeps GPU memory bounded', async () => {
    const trainer = createTrainer(task(), images, TRAIN, SHAPE);
    const seen: { tensors: number; allocated: number }[] = [];
    for (let i = 0; i < 3; i++) {
      expect(Number.isFinite(await trainer.step())).toBe(true);
      const m = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU: number; numBytesInGPU: number };
      seen.push({ tensors: m.numTensors, allocated: m.numBytesAllocatedInGPU });
      expect(m.numBytesInGPU).toBeLessThanOrEqual(m.numBytesAllocatedInGPU);
    }
    // Every step leaves the same tensors (model, EMA, Adam moments) and reuses the buffer pool.
    expect(seen[1].tensors).toBe(seen[0].tensors);
    expect(seen[2].tensors).toBe(seen[0].tensors);
    expect(seen[2].allocated).toBe(seen[1].allocated);
    trainer.dispose();
  });

  it('fails a diverged run within lossReadEvery steps, before any checkpoint', async () => {
    const bad = images.slice().fill(Number.NaN);
    const t = task({ steps: 3, checkpointEvery: 3 });
    let last = 0;
    const err = await pretrain(t, bad, TRAIN, { progress: (_f, d) => (last = d.step ?? last) }, { ...SHAPE, lossReadEvery: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect((err as Error).message).toMatch(/at step 1/);
    expect(last).toBeLessThanOrEqual(2);
    expect(fs.existsSync(t.checkpointDir)).toBe(false);
  });

  it('refuses a model whose tensors exceed the adapter, naming the limit, before allocating', async () => {
    const before = tf.memory().numTensors;
    // Attention at 64x64: a 4096 x 4096 score matrix per image, 64 MiB... times 3 for a 96x96 input.
    const big = task({ unet: { baseChannels: 8, channelMults: [1], blocksPerLevel: 1, attentionResolutions: [96], dropout: 0, groups: 4 } });
    const err = await pretrain(big, new Float32Array(96 * 96), 1, {}, { imageSize: 96, imageChannels: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceLimitError);
    expect((err as Error).message).toMatch(/in_1 attention scores.*maxStorageBufferBindingSize of 128\.0 MiB/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
