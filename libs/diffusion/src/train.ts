import * as tf from '@tensorflow/tfjs';
import { DATASET_SHAPES, ditLayout, paddedImageSize, unetLayout, type CheckpointInfo, type ComputeHooks, type PretrainTask } from '@ddae/contracts';
import { assignParams, latestCheckpoint, readCheckpointData, writeCheckpoint, type FoundCheckpoint, type ParamEntry } from './checkpoint';
import { imagesPerPass } from './device-limits';
import { fusedClipScale, hasFusedClipScale } from './fused';
import { adamIsFused, adamStep, type AdamSlot } from './optimizer';
import { Rng } from './rng';
import { DDPM_T, EDM_P_MEAN, EDM_P_STD, ddpmNoise, edmPrecond } from './schedules';
import { createBackbone, isDiTConfig, modelConfigOf, type Backbone, type ModelConfig } from './backbone';

/** The loss became NaN or infinite: the run diverged; retrying the same seed would diverge again. */
export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

/** `hooks.shouldStop()` asked to stop; a checkpoint was written first, so a rerun resumes. */
export class StoppedError extends Error {
  override name = 'StoppedError';
  constructor(readonly checkpoint: CheckpointInfo) {
    super(`stopped at step ${checkpoint.step}; checkpoint ${checkpoint.path}`);
  }
}

export interface PretrainOutcome {
  finalCheckpoint: CheckpointInfo;
  /** Optimiser steps of the run (its total, resumed steps included). */
  steps: number;
  /** Wall time of this call. */
  seconds: number;
  /** Trainable parameters of the network. */
  parameters: number;
}

/** Options of `pretrain` beyond the task: the input shape and memory control. */
export interface PretrainOptions {
  /**
   * Images per forward/backward pass; gradients of the micro-batches are summed into one optimiser
   * step. Default: the whole batch, except on wasm, whose heap is capped at 4 GB, where it is
   * estimated from the model's activation size (see `autoMicroBatch`).
   */
  microBatchSize?: number;
  /** Height and width of each image. Default: paddedImageSize of the data set (32 for Fashion-MNIST). */
  imageSize?: number;
  /** Channels of each image. Default: the data set's channels. */
  imageChannels?: number;
  /** Steps per point of the training-loss curve (`hooks.trainLoss`). Default 50. */
  lossEvery?: number;
  /**
   * Steps whose losses stay on the device before they are read (and checked for NaN) in one go.
   * Reading a loss waits for the GPU to finish its step, which stalls a GPU's pipeline, so on
   * webgpu they are read every `GPU_LOSS_READ_EVERY` (10) steps; elsewhere reading costs nothing
   * and happens every step. Losses are always read before a checkpoint, a stop and the end, and at
   * every `lossEvery` window: a non-finite loss fails the run within this many steps and never
   * reaches a checkpoint. Default: 10 on webgpu, 1 elsewhere.
   */
  lossReadEvery?: number;
}

/** Default of `PretrainOptions.lossEvery`. */
export const DEFAULT_LOSS_EVERY = 50;

/** Default of `PretrainOptions.lossReadEvery` on webgpu. */
export const GPU_LOSS_READ_EVERY = 10;

/** How many scalars one addN sums: a kernel binds its inputs and output as storage buffers, and WebGPU guarantees only 8 per shader. */
const ADDN_CHUNK = 4;

const PROGRESS_INTERVAL_MS = 500;

/** Bytes a training pass keeps per block-output float on wasm, calibrated on STACK.md's measurement (base-32 UNet: batch 16 fits in ~1.9 GB, batch 64 overflows 4 GB). */
const WASM_BYTES_PER_ACTIVATION = 320;
/** Share of the 4 GB wasm heap a step may plan to use. */
const WASM_ACTIVATION_BUDGET = 1.5e9;

/**
 * The micro-batch size that keeps a step's activations within the wasm heap, or on webgpu every
 * tensor within the adapter's buffer limit (see `imagesPerPass`, which throws when one image does
 * not fit); `batch` itself on other backends (native memory is the operator's to size).
 */
export function autoMicroBatch(config: ModelConfig, batch: number, backend = tf.getBackend()): number {
  if (backend === 'webgpu') return imagesPerPass(config, batch);
  if (backend !== 'wasm') return batch;
  let floats = 0;
  if (isDiTConfig(config)) {
    // A DiT block keeps about (1 + 3 + 1 + mlpRatio) x tokens x width floats and heads x tokens^2 scores.
    for (const b of ditLayout(config)) floats += b.resolution ** 2 * (b.channels * (5 + config.mlpRatio) + config.heads * b.resolution ** 2);
  } else {
    floats = config.imageSize * config.imageSize * config.baseChannels;
    for (const b of unetLayout(config)) floats += b.resolution * b.resolution * b.channels;
  }
  return Math.max(1, Math.min(batch, Math.floor(WASM_ACTIVATION_BUDGET / (WASM_BYTES_PER_ACTIVATION * floats))));
}

/** EMA decay with warm-up: min(cap, 1 - (1 + step)^(-2/3)). */
export function emaDecay(step: number, cap: number): number {
  return Math.min(cap, 1 - (1 + step) ** (-2 / 3));
}

/**
 * Batch order independent of the rng state: epoch e is a permutation seeded by (seed, e), so a resumed run draws the same batches.
 * Exported for its spec; `pretrain` and `createTrainer` make their own.
 */
export class BatchOrder {
  private epoch = -1;
  private perm: Uint32Array = new Uint32Array(0);
  constructor(
    private readonly seed: number,
    private readonly count: number,
  ) {}

  indices(step: number, batch: number): Uint32Array {
    const out = new Uint32Array(batch);
    for (let i = 0; i < batch; i++) {
      const pos = step * batch + i;
      const e = Math.floor(pos / this.count);
      if (e !== this.epoch) {
        this.epoch = e;
        this.perm = new Rng((this.seed * 0x9e3779b1 + e * 0x85ebca77 + 0x1234567) >>> 0).permutation(this.count);
      }
      out[i] = this.perm[pos % this.count];
    }
    return out;
  }
}

interface TrainState {
  unet: Backbone;
  ema: Map<string, tf.Variable>;
  m: Map<string, tf.Variable>;
  v: Map<string, tf.Variable>;
  rng: Rng;
  step: number;
}

function paramEntries(unet: Backbone): { entries: ParamEntry[]; total: number } {
  const entries: ParamEntry[] = [];
  let offset = 0;
  for (const [name, v] of unet.params) {
    entries.push({ name, shape: v.shape, offset, size: v.size });
    offset += v.size;
  }
  return { entries, total: offset };
}

/** Reads every variable into one flat array (all reads issued at once: one wait for the device). */
async function flatten(order: ParamEntry[], vars: Map<string, tf.Variable>, total: number, out: Float32Array = new Float32Array(total), base = 0): Promise<Float32Array> {
  const values = await Promise.all(order.map((e) => (vars.get(e.name) as tf.Variable).data() as Promise<Float32Array>));
  order.forEach((e, i) => out.set(values[i], base + e.offset));
  return out;
}

/**
 * The sum of many scalars in chunks of `ADDN_CHUNK`: one addN over every parameter's squared norm
 * (111-215 inputs) exceeds the storage buffers a WebGPU shader may bind, and tfjs-webgpu does not
 * throw: the device drops the command and training goes on with wrong updates (GPU.md).
 */
export function sumScalars(xs: tf.Tensor[]): tf.Tensor {
  if (xs.length === 0) return tf.scalar(0);
  let level = xs;
  while (level.length > 1) {
    const next: tf.Tensor[] = [];
    for (let i = 0; i < level.length; i += ADDN_CHUNK) {
      const chunk = level.slice(i, i + ADDN_CHUNK);
      next.push(chunk.length === 1 ? chunk[0] : tf.addN(chunk));
    }
    level = next;
  }
  return level[0];
}

function zerosLike(unet: Backbone, tag: string): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [name, p] of unet.params) out.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false, `${p.name}/${tag}`)));
  return out;
}

/**
 * Pretrains a diffusion network, UNet or DiT (DDPM epsilon-prediction, or EDM preconditioned denoising) with Adam,
 * linear warm-up, global-norm clipping and EMA; resumes from the newest valid checkpoint in
 * `task.checkpointDir` and always ends with a checkpoint at `task.steps`.
 * @param images NHWC float32 in [-1, 1], already padded to the model size
 * @param count number of images in `images`
 */
export async function pretrain(task: PretrainTask, images: Float32Array, count: number, hooks: ComputeHooks = {}, shape: PretrainOptions = {}): Promise<PretrainOutcome> {
  const started = Date.now();
  const { config, d } = checkedConfig(task, images, count, shape);
  // Before any allocation: a model that cannot fit the device fails here, naming the limit.
  const micro = microBatchOf(task, config, count, shape);

  const found = latestCheckpoint(task.checkpointDir);
  const toInfo = (f: FoundCheckpoint): CheckpointInfo => ({ step: f.step, path: f.path, sha256: f.manifestSha256, ...(f.manifest.loss !== undefined ? { loss: f.manifest.loss } : {}) });
  if (found && found.step >= task.steps) {
    return { finalCheckpoint: toInfo(found), steps: found.step, seconds: (Date.now() - started) / 1000, parameters: found.manifest.totalSize };
  }

  const state = initialState(config, task.seed);
  const { unet } = state;
  const { entries, total } = paramEntries(unet);
  const dispose = (): void => disposeState(state);
  try {
    if (found) {
      if (canonical(found.manifest.config) !== canonical(config) || found.manifest.method !== task.method) {
        throw new Error(`checkpoint ${found.path} holds another model (${found.manifest.method}, ${canonical(found.manifest.config)}); use a fresh checkpointDir`);
      }
      const data = readCheckpointData(found.path);
      assignParams(unet, entries, data.weights);
      tf.tidy(() => {
        for (const e of entries) {
          state.ema.get(e.name)?.assign(tf.tensor(data.ema.subarray(e.offset, e.offset + e.size), e.shape));
          state.m.get(e.name)?.assign(tf.tensor(data.optimizer.subarray(e.offset, e.offset + e.size), e.shape));
          state.v.get(e.name)?.assign(tf.tensor(data.optimizer.subarray(total + e.offset, total + e.offset + e.size), e.shape));
        }
      });
      state.rng.setState(found.manifest.rngState);
      state.step = found.step;
      hooks.progress?.(state.step / task.steps, { step: state.step, message: `resumed from the checkpoint of step ${found.step}` });
    }

    const order = new BatchOrder(task.seed, count);
    let lastInfo: CheckpointInfo | undefined = found ? toInfo(found) : undefined;
    let lastLoss: number | undefined = found?.manifest.loss;
    let lastProgress = 0;
    const lossEvery = Math.max(1, Math.floor(shape.lossEvery ?? DEFAULT_LOSS_EVERY));
    const readEvery = Math.max(1, Math.floor(shape.lossReadEvery ?? (tf.getBackend() === 'webgpu' ? GPU_LOSS_READ_EVERY : 1)));
    let windowSum = 0;
    let windowSteps = 0;
    /** Losses of steps taken but not read yet, in step order (on the device). */
    const unread: { step: number; loss: tf.Scalar }[] = [];

    /** Reads the pending losses in one wait: NaN check, loss curve, last loss. */
    const readLosses = async (): Promise<void> => {
      if (unread.length === 0) return;
      const batch = unread.splice(0, unread.length);
      let values: number[];
      try {
        values = (await Promise.all(batch.map((u) => u.loss.data()))).map((v) => v[0]);
      } finally {
        for (const u of batch) u.loss.dispose();
      }
      batch.forEach(({ step }, i) => {
        const loss = values[i];
        if (!Number.isFinite(loss)) throw new NonFiniteLossError(`loss is ${loss} at step ${step}`);
        lastLoss = loss;
        windowSum += loss;
        windowSteps += 1;
        if (step % lossEvery === 0 || step === task.steps) {
          hooks.trainLoss?.({ step, loss: windowSum / windowSteps });
          windowSum = 0;
          windowSteps = 0;
        }
      });
    };

    const save = async (): Promise<CheckpointInfo> => {
      // A checkpoint never holds weights updated after a non-finite loss.
      await readLosses();
      const opt = new Float32Array(2 * total);
      const [weights, ema] = await Promise.all([flatten(entries, unet.params, total), flatten(entries, state.ema, total), flatten(entries, state.m, total, opt, 0), flatten(entries, state.v, total, opt, total)]);
      const f = writeCheckpoint(task.checkpointDir, { step: state.step, method: task.method, config, params: entries, totalSize: total, rngState: state.rng.getState(), ...(lastLoss !== undefined ? { loss: lastLoss } : {}) }, { weights, ema, optimizer: opt });
      const info = toInfo(f);
      lastInfo = info;
      hooks.checkpoint?.(info);
      return info;
    };

    try {
      // 0 steps: the initial weights are the result (the untrained-network baseline).
      if (task.steps === 0) return { finalCheckpoint: await save(), steps: 0, seconds: (Date.now() - started) / 1000, parameters: total };

      while (state.step < task.steps) {
        if (hooks.shouldStop?.()) {
          // Reuse a checkpoint of this very step (just written, or resumed from) instead of rewriting it.
          const info = lastInfo && lastInfo.step === state.step ? lastInfo : await save();
          throw new StoppedError(info);
        }
        const loss = await trainStep(task, state, images, count, d, order, micro);
        state.step += 1;
        unread.push({ step: state.step, loss });
        const checkpointNow = state.step % task.checkpointEvery === 0 || state.step === task.steps;
        if (checkpointNow || state.step % readEvery === 0 || state.step % lossEvery === 0) await readLosses();
        const now = Date.now();
        if (now - lastProgress >= PROGRESS_INTERVAL_MS || state.step === task.steps) {
          lastProgress = now;
          hooks.progress?.(state.step / task.steps, { step: state.step, ...(lastLoss !== undefined ? { loss: lastLoss } : {}) });
        }
        if (checkpointNow) {
          const info = await save();
          if (state.step === task.steps) return { finalCheckpoint: info, steps: state.step, seconds: (Date.now() - started) / 1000, parameters: total };
        }
        // Yield to the event loop so IPC/stop signals are delivered between steps.
        await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      for (const u of unread) u.loss.dispose();
    }
    throw new Error('unreachable: training loop ended without a final checkpoint');
  } finally {
    dispose();
  }
}

function checkedConfig(task: PretrainTask, images: Float32Array, count: number, shape: PretrainOptions): { config: ModelConfig; d: number } {
  const ds = DATASET_SHAPES[task.dataset.name];
  const config = modelConfigOf(task, shape.imageSize ?? paddedImageSize(ds.size), shape.imageChannels ?? ds.channels);
  const d = config.imageSize * config.imageSize * config.imageChannels;
  if (images.length !== count * d) throw new Error(`images: ${images.length} values, expected ${count} x ${d}`);
  if (count < 1) throw new Error('pretrain: no images');
  return { config, d };
}

/** Images per forward/backward pass; on webgpu never more than the adapter's buffer limit allows (throws when one image does not fit). */
function microBatchOf(task: PretrainTask, config: ModelConfig, count: number, shape: PretrainOptions): number {
  const wanted = Math.max(1, Math.floor(shape.microBatchSize ?? autoMicroBatch(config, Math.min(task.batchSize, count))));
  return imagesPerPass(config, wanted);
}

/** A fresh model with zero Adam moments; the EMA starts at the initial weights (decay is 0 at step 0 anyway). */
function initialState(config: ModelConfig, seed: number): TrainState {
  const unet = createBackbone(config, seed);
  const state: TrainState = { unet, ema: zerosLike(unet, 'ema'), m: zerosLike(unet, 'm'), v: zerosLike(unet, 'v'), rng: new Rng(seed ^ 0x5eed), step: 0 };
  tf.tidy(() => {
    for (const [name, p] of unet.params) state.ema.get(name)?.assign(p);
  });
  return state;
}

function disposeState(state: TrainState): void {
  for (const map of [state.ema, state.m, state.v]) for (const t of map.values()) t.dispose();
  state.unet.dispose();
}

/** `pretrain`'s optimiser steps without checkpoints, resume, progress or stop handling (benchmarks time it). */
export interface Trainer {
  /** The network (a UNet or a DiT). */
  readonly unet: Backbone;
  /** Images per forward/backward pass (gradients of a step's micro-batches are summed). */
  readonly microBatch: number;
  /** Optimiser steps taken so far. */
  readonly steps: number;
  /**
   * One optimiser step exactly as `pretrain` takes it (noise, forward, backward, clipping, Adam,
   * EMA); resolves with its loss once read. On a GPU that read waits for the step to finish
   * (`pretrain` reads every `lossReadEvery` steps instead), which a benchmark should know.
   */
  step(): Promise<number>;
  /** Disposes the model, its EMA and the optimiser state. */
  dispose(): void;
}

/**
 * A fresh training session from step 0 with `task`'s model and hyper-parameters; the same seed gives
 * the same steps as `pretrain` (whose checkpoint fields it ignores).
 * @param images NHWC float32 in [-1, 1], already padded to the model size
 */
export function createTrainer(task: PretrainTask, images: Float32Array, count: number, shape: PretrainOptions = {}): Trainer {
  const { config, d } = checkedConfig(task, images, count, shape);
  const micro = microBatchOf(task, config, count, shape);
  const state = initialState(config, task.seed);
  const order = new BatchOrder(task.seed, count);
  return {
    unet: state.unet,
    microBatch: micro,
    get steps() {
      return state.step;
    },
    step: async () => {
      const loss = await trainStep(task, state, images, count, d, order, micro);
      state.step += 1;
      try {
        return (await loss.data())[0];
      } finally {
        loss.dispose();
      }
    },
    dispose: () => disposeState(state),
  };
}

/** Key-order-independent JSON, to compare configurations. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** One optimiser step; resolves with its loss, still on the device (the caller reads and disposes it). */
async function trainStep(task: PretrainTask, s: TrainState, images: Float32Array, count: number, d: number, order: BatchOrder, micro: number): Promise<tf.Scalar> {
  const { unet, rng } = s;
  const cfg = unet.config;
  const b = Math.min(task.batchSize, count);
  const idx = order.indices(s.step, b);
  const x0 = new Float32Array(b * d);
  for (let i = 0; i < b; i++) x0.set(images.subarray(idx[i] * d, (idx[i] + 1) * d), i * d);
  const vars = [...unet.params.values()];
  const shp = (n: number): [number, number, number, number] => [n, cfg.imageSize, cfg.imageSize, cfg.imageChannels];
  // Mean over the micro-batch [lo, hi), weighted by its share of the batch: the micro-batch
  // losses (and gradients) then sum to the full batch's.
  let lossFn: (lo: number, hi: number) => tf.Scalar;
  if (task.method === 'ddpm') {
    const t = new Int32Array(b);
    for (let i = 0; i < b; i++) t[i] = rng.uniformInt(1, DDPM_T);
    const eps = rng.normal(b * d);
    const xt = ddpmNoise(x0, t, eps);
    const tIn = Float32Array.from(t, (v) => v / DDPM_T);
    lossFn = (lo, hi) => {
      const { output } = unet.forward(tf.tensor4d(xt.subarray(lo * d, hi * d), shp(hi - lo)), tf.tensor1d(tIn.subarray(lo, hi)), { training: true, rng });
      return tf.mul(tf.mean(tf.squaredDifference(output, tf.tensor4d(eps.subarray(lo * d, hi * d), shp(hi - lo)))), (hi - lo) / b);
    };
  } else {
    const n = rng.normal(b);
    const eps = rng.normal(b * d);
    const xin = new Float32Array(b * d);
    const cSkip = new Float32Array(b);
    const cOut = new Float32Array(b);
    const w = new Float32Array(b);
    const cNoise = new Float32Array(b);
    const xn = new Float32Array(b * d);
    for (let i = 0; i < b; i++) {
      const sigma = Math.exp(EDM_P_MEAN + EDM_P_STD * n[i]);
      const pc = edmPrecond(sigma);
      cSkip[i] = pc.cSkip;
      cOut[i] = pc.cOut;
      w[i] = pc.weight;
      cNoise[i] = pc.cNoise;
      for (let j = i * d; j < (i + 1) * d; j++) {
        xn[j] = x0[j] + sigma * eps[j];
        xin[j] = pc.cIn * xn[j];
      }
    }
    lossFn = (lo, hi) => {
      const n4 = hi - lo;
      const col = (a: Float32Array) => tf.tensor4d(a.subarray(lo, hi), [n4, 1, 1, 1]);
      const img = (a: Float32Array) => tf.tensor4d(a.subarray(lo * d, hi * d), shp(n4));
      const { output } = unet.forward(img(xin), tf.tensor1d(cNoise.subarray(lo, hi)), { training: true, rng });
      const den = tf.add(tf.mul(col(cSkip), img(xn)), tf.mul(col(cOut), output));
      return tf.mul(tf.mean(tf.mul(col(w), tf.squaredDifference(den, img(x0)))), n4 / b);
    };
  }

  let grads: tf.NamedTensorMap = {};
  let loss: tf.Scalar | undefined;
  try {
    for (let lo = 0; lo < b; lo += micro) {
      const hi = Math.min(b, lo + micro);
      const r = tf.variableGrads(() => lossFn(lo, hi), vars);
      if (lo === 0) {
        grads = r.grads;
        loss = r.value;
      } else {
        const prev = grads;
        const prevLoss = loss as tf.Scalar;
        grads = tf.tidy(() => Object.fromEntries(Object.keys(prev).map((k) => [k, tf.add(prev[k], r.grads[k])])));
        loss = tf.tidy(() => tf.add(prevLoss, r.value));
        tf.dispose([prev, r.grads, prevLoss, r.value]);
      }
    }
    await applyUpdate(task, s, grads);
    return loss as tf.Scalar;
  } catch (error) {
    loss?.dispose();
    throw error;
  } finally {
    // Also after a failed step (an error mid-backward, a device fault): 111+ gradient tensors.
    tf.dispose(grads);
  }
}

/**
 * Global-norm clipping, Adam and EMA on every parameter. The loss is not read here: the update
 * is queued whatever it is, and `pretrain` fails the run when it reads a non-finite loss.
 */
async function applyUpdate(task: PretrainTask, s: TrainState, grads: tf.NamedTensorMap): Promise<void> {
  const { unet } = s;
  const names = [...unet.params.keys()];
  const gradOf = (name: string): tf.Tensor => grads[(unet.params.get(name) as tf.Variable).name];
  const slots: AdamSlot[] = names.map((name) => ({
    param: unet.params.get(name) as tf.Variable,
    m: s.m.get(name) as tf.Variable,
    v: s.v.get(name) as tf.Variable,
    ema: s.ema.get(name) as tf.Variable,
  }));
  const stepNo = s.step + 1;
  const options = {
    step: stepNo,
    lr: task.learningRate * (task.warmupSteps > 0 ? Math.min(1, stepNo / task.warmupSteps) : 1),
    emaDecay: emaDecay(s.step, task.emaDecayCap),
  };
  const gradNorm = () => tf.sqrt(sumScalars(names.map((name) => tf.sum(tf.square(gradOf(name))))));
  if (adamIsFused()) {
    // The fused kernel takes the clipping scale as an attribute, i.e. read on the host: cheap on
    // the CPU backends that have it (a GPU kernel should take it as a tensor input instead).
    const normT = tf.tidy(gradNorm);
    let norm: number;
    try {
      norm = (await normT.data())[0];
    } finally {
      normT.dispose();
    }
    adamStep(slots, names.map(gradOf), { ...options, gradScale: Math.min(1, task.gradClip / (norm + 1e-6)) });
    return;
  }
  tf.tidy(() => {
    // A GPU's own kernel (webgpu): 1 + 214 / 15 dispatches for the base-32 UNet instead of about 505.
    const scale = hasFusedClipScale() ? fusedClipScale(names.map(gradOf), task.gradClip) : (tf.minimum(1, tf.div(task.gradClip, tf.add(gradNorm(), 1e-6))) as tf.Scalar);
    adamStep(slots, names.map(gradOf), { ...options, gradScale: scale });
  });
}
