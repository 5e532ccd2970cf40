import * as tf from '@tensorflow/tfjs';
import { unetLayout, type BlockInfo, type UNetConfig } from '@ddae/contracts';
import { NamedParameters } from './named-parameters';
import { conv2dBias, conv2dBiasAdd } from './conv';
import { fusedGroupNorm, hasFusedGroupNorm, matMulBias } from './fused';
import { Rng } from './rng';

/** A UNet's full configuration: the spec's UNet plus the (padded) input shape. */
export type UNetModelConfig = UNetConfig & {
  /** Input height and width (padded, e.g. 32 for Fashion-MNIST). */
  imageSize: number;
  /** Input channels. */
  imageChannels: number;
};

/** Options of one forward pass. */
export interface ForwardOptions {
  /** Dropout on (pretraining) or off (features). */
  training: boolean;
  /** Block names (from `unetLayout`) whose outputs are returned. Default none. */
  taps?: string[];
  /** Source of dropout masks; required when training with dropout > 0. */
  rng?: Rng;
  /**
   * Stop after this block (a layout name): the pass computes only what the block's output needs and
   * returns it as `output` (and as a tap when asked). Fine-tuning trains the network up to the tap
   * without paying for the rest. Default: the whole network.
   */
  until?: string;
}

export interface ForwardResult {
  output: tf.Tensor4D;
  taps: Record<string, tf.Tensor4D>;
}

/**
 * The UNet of REFERENCE.md from raw tf ops. Every weight lives in `params` under a stable name
 * (e.g. `in_1.conv1.w`), so the optimiser, EMA and checkpoints address weights by name.
 */
export class UNet extends NamedParameters {
  readonly config: UNetModelConfig;
  readonly layout: BlockInfo[];
  private readonly embDim: number;

  /**
   * @param config the model configuration; groups must divide every block's channels.
   * @param seed initialisation seed (same seed, same weights).
   */
  constructor(config: UNetModelConfig, seed = 0) {
    super('unet');
    this.config = config;
    this.layout = unetLayout(config);
    this.embDim = config.baseChannels * 4;
    const bad = this.layout.find((b) => b.channels % config.groups !== 0);
    if (bad) throw new Error(`groups=${config.groups} does not divide the ${bad.channels} channels of ${bad.name}`);
    this.build(new Rng(seed));
  }




  private add(name: string, shape: number[], init: 'zeros' | 'ones' | { fanIn: number; scale?: number }, rng: Rng): void {
    const size = shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    if (init === 'zeros') values = new Float32Array(size);
    else if (init === 'ones') values = new Float32Array(size).fill(1);
    else {
      // LeCun-normal: keeps activations at unit scale through raw convs without normalisation.
      values = rng.normal(size);
      const s = (init.scale ?? 1) / Math.sqrt(init.fanIn);
      for (let i = 0; i < size; i++) values[i] *= s;
    }
    this.setParameter(name, values, shape);
  }

  private addConv(name: string, k: number, cin: number, cout: number, rng: Rng, scale = 1): void {
    this.add(`${name}.w`, [k, k, cin, cout], { fanIn: k * k * cin, scale }, rng);
    this.add(`${name}.b`, [cout], 'zeros', rng);
  }

  private addDense(name: string, cin: number, cout: number, rng: Rng, scale = 1): void {
    this.add(`${name}.w`, [cin, cout], { fanIn: cin, scale }, rng);
    this.add(`${name}.b`, [cout], 'zeros', rng);
  }

  private addNorm(name: string, c: number, rng: Rng): void {
    this.add(`${name}.g`, [c], 'ones', rng);
    this.add(`${name}.b`, [c], 'zeros', rng);
  }

  private addResBlock(name: string, cin: number, cout: number, attention: boolean, rng: Rng): void {
    this.addNorm(`${name}.norm1`, cin, rng);
    this.addConv(`${name}.conv1`, 3, cin, cout, rng);
    this.addDense(`${name}.temb`, this.embDim, cout, rng);
    this.addNorm(`${name}.norm2`, cout, rng);
    this.addConv(`${name}.conv2`, 3, cout, cout, rng);
    if (cin !== cout) this.addConv(`${name}.skip`, 1, cin, cout, rng);
    if (attention) {
      this.addNorm(`${name}.attn.norm`, cout, rng);
      this.addDense(`${name}.attn.qkv`, cout, 3 * cout, rng);
      this.addDense(`${name}.attn.proj`, cout, cout, rng);
    }
  }

  private build(rng: Rng): void {
    const c = this.config;
    this.addDense('temb.dense1', c.baseChannels, this.embDim, rng);
    this.addDense('temb.dense2', this.embDim, this.embDim, rng);
    this.addConv('stem', 3, c.imageChannels, c.baseChannels, rng);
    const skips: number[] = [c.baseChannels];
    let ch = c.baseChannels;
    for (const b of this.layout) {
      if (b.kind === 'encoder' || b.kind === 'middle') {
        this.addResBlock(b.name, ch, b.channels, b.attention, rng);
        ch = b.channels;
        if (b.kind === 'encoder') skips.push(ch);
      } else if (b.kind === 'downsample') {
        this.addConv(b.name, 3, ch, b.channels, rng);
        skips.push(b.channels);
      } else {
        const skip = skips.pop() as number;
        this.addResBlock(b.name, ch + skip, b.channels, b.attention, rng);
        ch = b.channels;
        if (this.upsampleAfter(b)) this.addConv(`${b.name}.up`, 3, ch, ch, rng);
      }
    }
    this.addNorm('head.norm', ch, rng);
    this.addConv('head.conv', 3, ch, c.imageChannels, rng);
  }

  /** Whether a decoder block ends its level (and is followed by nearest x2 + conv). */
  private upsampleAfter(b: BlockInfo): boolean {
    const i = this.layout.indexOf(b);
    const next = this.layout[i + 1];
    return next !== undefined && next.resolution > b.resolution;
  }

  /**
   * One forward pass. Tensors it returns are owned by the caller; intermediates are not disposed
   * here so the pass can run inside `tf.variableGrads` (wrap calls in `tf.tidy`).
   * @param x images [N, S, S, C] (noised, in the model's input scale)
   * @param tInput time input [N] (DDPM: t / 1000; EDM: c_noise)
   */
  forward(x: tf.Tensor4D, tInput: tf.Tensor1D, opts: ForwardOptions): ForwardResult {
    const wanted = new Set(opts.taps ?? []);
    const known = new Set(this.layout.map((b) => b.name));
    for (const t of wanted) if (!known.has(t)) throw new Error(`unknown tap "${t}"; known: ${[...known].join(', ')}`);
    if (opts.until !== undefined && !known.has(opts.until)) throw new Error(`unknown block "${opts.until}"; known: ${[...known].join(', ')}`);
    const dropout = opts.training ? this.config.dropout : 0;
    if (dropout > 0 && !opts.rng) throw new Error('forward: training with dropout needs an rng');
    const taps: Record<string, tf.Tensor4D> = {};
    // Every block's time projection reads SiLU(embedding): computed once per pass.
    const emb = silu(this.timeEmbedding(tInput));
    let h = this.conv('stem', x, 1, 1);
    const skips: tf.Tensor4D[] = [h];
    for (const b of this.layout) {
      if (b.kind === 'encoder' || b.kind === 'middle') {
        h = this.resBlock(b.name, h, emb, b.attention, dropout, opts.rng);
        if (b.kind === 'encoder') skips.push(h);
      } else if (b.kind === 'downsample') {
        h = this.conv(b.name, h, 2, 1);
        skips.push(h);
      } else {
        const skip = skips.pop() as tf.Tensor4D;
        h = this.resBlock(b.name, tf.concat([h, skip], 3), emb, b.attention, dropout, opts.rng);
      }
      if (wanted.has(b.name)) taps[b.name] = h;
      if (opts.until === b.name) return { output: h, taps };
      if (b.kind === 'decoder' && this.upsampleAfter(b)) h = this.conv(`${b.name}.up`, upsample2x(h), 1, 1);
    }
    const out = this.conv('head.conv', this.normAct('head.norm', h, true), 1, 1);
    return { output: out, taps };
  }

  private timeEmbedding(tInput: tf.Tensor1D): tf.Tensor2D {
    const half = this.config.baseChannels / 2;
    const freqs = new Float32Array(half);
    for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / Math.max(1, half - 1));
    // The sinusoid takes 1000 x input: with the DDPM input t/1000 this is the reference code's
    // integer-t embedding, so all frequencies stay informative.
    const args = tf.mul(tf.reshape(tf.mul(tInput, 1000), [-1, 1]), tf.tensor2d(freqs, [1, half]));
    let e = tf.concat([tf.sin(args), tf.cos(args)], 1) as tf.Tensor2D;
    if (e.shape[1] < this.config.baseChannels) e = tf.pad(e, [[0, 0], [0, this.config.baseChannels - e.shape[1]]]);
    e = silu(this.dense('temb.dense1', e));
    return this.dense('temb.dense2', e);
  }

  private dense(name: string, x: tf.Tensor2D): tf.Tensor2D {
    return matMulBias(x, this.p(`${name}.w`), this.p(`${name}.b`));
  }

  private conv(name: string, x: tf.Tensor4D, stride: 1 | 2, pad: number): tf.Tensor4D {
    return conv2dBias(x, this.p(`${name}.w`) as tf.Tensor4D, this.p(`${name}.b`) as tf.Tensor1D, stride, pad);
  }

  /** conv(x) + bias + addend (per image or the full output shape). */
  private convAdd(name: string, x: tf.Tensor4D, addend: tf.Tensor4D, stride: 1 | 2, pad: number): tf.Tensor4D {
    return conv2dBiasAdd(x, this.p(`${name}.w`) as tf.Tensor4D, this.p(`${name}.b`) as tf.Tensor1D, addend, stride, pad);
  }

  /** GroupNorm, then SiLU when `act`: one fused kernel where the backend has it, composite ops elsewhere. */
  private normAct(name: string, x: tf.Tensor4D, act: boolean): tf.Tensor4D {
    if (hasFusedGroupNorm()) return fusedGroupNorm(x, this.p(`${name}.g`), this.p(`${name}.b`), { groups: this.config.groups, eps: 1e-5, silu: act });
    const y = this.groupNorm(name, x);
    return act ? silu(y) : y;
  }

  private groupNorm(name: string, x: tf.Tensor4D): tf.Tensor4D {
    const [n, h, w, c] = x.shape;
    const g = this.config.groups;
    const xr = tf.reshape(x, [n, h, w, g, c / g]);
    const { mean, variance } = tf.moments(xr, [1, 2, 4], true);
    const xn = tf.reshape(tf.mul(tf.sub(xr, mean), tf.rsqrt(tf.add(variance, 1e-5))), [n, h, w, c]);
    return tf.add(tf.mul(xn, this.p(`${name}.g`)), this.p(`${name}.b`));
  }

  /** `embAct` is SiLU of the time embedding. */
  private resBlock(name: string, x: tf.Tensor4D, embAct: tf.Tensor2D, attention: boolean, dropout: number, rng: Rng | undefined): tf.Tensor4D {
    // The time projection (per image) and the shortcut (the whole output) are added inside the
    // convolutions, where the backend fuses them: no separate pass over the activations.
    const cout = (this.p(`${name}.conv1.w`) as tf.Tensor4D).shape[3];
    const t = tf.reshape(this.dense(`${name}.temb`, embAct), [-1, 1, 1, cout]) as tf.Tensor4D;
    let h = this.convAdd(`${name}.conv1`, this.normAct(`${name}.norm1`, x, true), t, 1, 1);
    h = this.normAct(`${name}.norm2`, h, true);
    if (dropout > 0 && rng) h = applyDropout(h, dropout, rng);
    const shortcut = this.params.has(`${name}.skip.w`) ? this.conv(`${name}.skip`, x, 1, 0) : x;
    let out = this.convAdd(`${name}.conv2`, h, shortcut, 1, 1);
    if (attention) out = this.attention(`${name}.attn`, out);
    return out;
  }

  private attention(name: string, x: tf.Tensor4D): tf.Tensor4D {
    const [n, hh, ww, c] = x.shape;
    const l = hh * ww;
    const hn = tf.reshape(this.normAct(`${name}.norm`, x, false), [n * l, c]) as tf.Tensor2D;
    const qkv = tf.reshape(this.dense(`${name}.qkv`, hn), [n, l, 3 * c]);
    const [q, k, v] = tf.split(qkv, 3, 2) as tf.Tensor3D[];
    // Explicit transpose: faster than matMul(transposeB) on wasm.
    const scores = tf.mul(tf.matMul(q, tf.transpose(k, [0, 2, 1])), 1 / Math.sqrt(c));
    const o = tf.matMul(tf.softmax(scores), v);
    const proj = this.dense(`${name}.proj`, tf.reshape(o, [n * l, c]) as tf.Tensor2D);
    return tf.add(x, tf.reshape(proj, [n, hh, ww, c]));
  }
}

function silu(x: tf.Tensor4D): tf.Tensor4D;
function silu(x: tf.Tensor2D): tf.Tensor2D;
function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** Nearest x2 by broadcasting against ones: its gradient is a plain sum, available everywhere. */
function upsample2x(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const y = tf.mul(tf.reshape(x, [n, h, 1, w, 1, c]), tf.ones([1, 1, 2, 1, 2, 1]));
  return tf.reshape(y, [n, 2 * h, 2 * w, c]) as tf.Tensor4D;
}

/** Inverted dropout with a mask drawn from the seeded rng (never from tf's own RNG). */
function applyDropout(x: tf.Tensor4D, rate: number, rng: Rng): tf.Tensor4D {
  return tf.mul(x, tf.tensor4d(rng.dropoutMask(x.size, 1 - rate), x.shape));
}
