import * as tf from '@tensorflow/tfjs';
import { ditConfigProblem, ditLayout, type BlockInfo, type DiTConfig } from '@ddae/contracts';
import { NamedParameters } from './named-parameters';
import { matMulBias } from './fused';
import { Rng } from './rng';
import type { ForwardOptions, ForwardResult } from './unet';

/** A DiT's full configuration: the spec's DiT, tagged, plus the (padded) input shape. */
export type DiTModelConfig = DiTConfig & {
  /** Tells a DiT's configuration (in checkpoints) from a UNet's, which has no tag. */
  backbone: 'dit';
  /** Input height and width; `patch` must divide it. */
  imageSize: number;
  /** Input channels. */
  imageChannels: number;
};

/** Frequencies of the sinusoidal time embedding (DiT's `frequency_embedding_size`). */
export const DIT_TIME_FREQUENCIES = 256;
const LN_EPS = 1e-6;

/**
 * The DiT of Peebles and Xie (2023) from raw tf ops, with the UNet's interface (named parameters,
 * `forward` with taps, `layout`):
 * - patchify: non-overlapping patch x patch patches, a linear map to `width` (DiT's strided conv),
 *   plus the fixed 2-D sin-cos position embedding;
 * - time embedding: sinusoid of 1000 x the time input (DDPM: t; EDM: 1000 c_noise), then
 *   Linear -> SiLU -> Linear;
 * - `depth` blocks with adaLN-Zero: from SiLU(time embedding) one linear map gives shift, scale and
 *   gate of the attention and of the MLP; x += gate_a * Attn(LN(x) (1 + scale_a) + shift_a), then
 *   x += gate_m * MLP(LN(x) (1 + scale_m) + shift_m); LayerNorm without affine, MLP with GELU
 *   (tanh); the modulation is zero at initialisation, so every block starts as the identity;
 * - final layer: adaLN (shift, scale) -> Linear to patch x patch x channels (zero at
 *   initialisation), then unpatchify.
 * Its output has the input's shape (epsilon for DDPM, F for EDM; no learned variance).
 * Taps: the token output of block i is `blk_i`, as a [N, grid, grid, width] tensor.
 */
export class DiT extends NamedParameters {
  readonly config: DiTModelConfig;
  readonly layout: BlockInfo[];
  /** Tokens per side (imageSize / patch). */
  readonly grid: number;
  private readonly posEmbed: Float32Array;

  /**
   * @param config the model configuration; `heads` must divide `width`, `patch` the image size.
   * @param seed initialisation seed (same seed, same weights).
   */
  constructor(config: DiTModelConfig, seed = 0) {
    super('dit');
    const problem = ditConfigProblem(config, config.imageSize);
    if (problem) throw new Error(`DiT: ${problem.message}`);
    this.config = config;
    this.grid = config.imageSize / config.patch;
    this.layout = ditLayout(config);
    this.posEmbed = sinCosPosEmbed2d(config.width, this.grid);
    this.build(new Rng(seed));
  }




  private add(name: string, shape: number[], init: 'zeros' | { std: number }, rng: Rng): void {
    const size = shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    if (init === 'zeros') values = new Float32Array(size);
    else {
      values = rng.normal(size);
      for (let i = 0; i < size; i++) values[i] *= init.std;
    }
    this.setParameter(name, values, shape);
  }

  /** A linear layer: Xavier-normal weights (DiT uses Xavier-uniform), zero bias; `zero` zeroes the weights too (adaLN-Zero). */
  private addLinear(name: string, cin: number, cout: number, rng: Rng, init: 'xavier' | 'zero' | { std: number } = 'xavier'): void {
    this.add(`${name}.w`, [cin, cout], init === 'zero' ? 'zeros' : init === 'xavier' ? { std: Math.sqrt(2 / (cin + cout)) } : init, rng);
    this.add(`${name}.b`, [cout], 'zeros', rng);
  }

  private build(rng: Rng): void {
    const { width: d, patch, imageChannels: c, mlpRatio } = this.config;
    const pp = patch * patch * c;
    this.addLinear('patch', pp, d, rng);
    // DiT initialises the timestep MLP with N(0, 0.02).
    this.addLinear('temb.dense1', DIT_TIME_FREQUENCIES, d, rng, { std: 0.02 });
    this.addLinear('temb.dense2', d, d, rng, { std: 0.02 });
    for (const b of this.layout) {
      this.addLinear(`${b.name}.adaln`, d, 6 * d, rng, 'zero');
      this.addLinear(`${b.name}.attn.qkv`, d, 3 * d, rng);
      this.addLinear(`${b.name}.attn.proj`, d, d, rng);
      this.addLinear(`${b.name}.mlp.fc1`, d, mlpRatio * d, rng);
      this.addLinear(`${b.name}.mlp.fc2`, mlpRatio * d, d, rng);
    }
    this.addLinear('final.adaln', d, 2 * d, rng, 'zero');
    this.addLinear('final.linear', d, pp, rng, 'zero');
  }

  /**
   * One forward pass (wrap calls in `tf.tidy`; intermediates are left for `tf.variableGrads`).
   * @param x images [N, S, S, C] (noised, in the model's input scale)
   * @param tInput time input [N] (DDPM: t / 1000; EDM: c_noise)
   * @param opts taps: block names (`blk_i`); no dropout in a DiT, so `training` changes nothing
   */
  forward(x: tf.Tensor4D, tInput: tf.Tensor1D, opts: ForwardOptions): ForwardResult {
    const wanted = new Set(opts.taps ?? []);
    const known = new Set(this.layout.map((b) => b.name));
    for (const t of wanted) if (!known.has(t)) throw new Error(`unknown tap "${t}"; known: ${[...known].join(', ')}`);
    if (opts.until !== undefined && !known.has(opts.until)) throw new Error(`unknown block "${opts.until}"; known: ${[...known].join(', ')}`);
    const { width: d, patch, imageSize: s, imageChannels: c } = this.config;
    const g = this.grid;
    const n = x.shape[0];
    const l = g * g;
    // Patchify: [N, S, S, C] -> [N*L, p*p*C] (patch rows, then columns, then channels) -> width.
    const patches = tf.reshape(tf.transpose(tf.reshape(x, [n, g, patch, g, patch, c]), [0, 1, 3, 2, 4, 5]), [n * l, patch * patch * c]) as tf.Tensor2D;
    let h = tf.add(tf.reshape(this.dense('patch', patches), [n, l, d]), tf.tensor3d(this.posEmbed, [1, l, d])) as tf.Tensor3D;
    // Every modulation reads SiLU(time embedding): computed once per pass.
    const cond = silu(this.timeEmbedding(tInput));
    const taps: Record<string, tf.Tensor4D> = {};
    for (const b of this.layout) {
      h = this.block(b.name, h, cond);
      if (wanted.has(b.name)) taps[b.name] = tf.reshape(h, [n, g, g, d]) as tf.Tensor4D;
      if (opts.until === b.name) return { output: taps[b.name] ?? (tf.reshape(h, [n, g, g, d]) as tf.Tensor4D), taps };
    }
    const [shift, scale] = tf.split(tf.reshape(this.dense('final.adaln', cond), [n, 1, 2 * d]), 2, 2);
    const y = this.dense('final.linear', tf.reshape(modulate(layerNorm(h), shift, scale), [n * l, d]) as tf.Tensor2D);
    // Unpatchify: [N*L, p*p*C] -> [N, S, S, C].
    const out = tf.reshape(tf.transpose(tf.reshape(y, [n, g, g, patch, patch, c]), [0, 1, 3, 2, 4, 5]), [n, s, s, c]) as tf.Tensor4D;
    return { output: out, taps };
  }

  private timeEmbedding(tInput: tf.Tensor1D): tf.Tensor2D {
    const half = DIT_TIME_FREQUENCIES / 2;
    const freqs = new Float32Array(half);
    for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / half);
    // As the UNet: 1000 x input, so the DDPM input t / 1000 embeds like DiT's integer t.
    const args = tf.mul(tf.reshape(tf.mul(tInput, 1000), [-1, 1]), tf.tensor2d(freqs, [1, half]));
    const e = tf.concat([tf.cos(args), tf.sin(args)], 1) as tf.Tensor2D;
    return this.dense('temb.dense2', silu(this.dense('temb.dense1', e)));
  }

  private dense(name: string, x: tf.Tensor2D): tf.Tensor2D {
    return matMulBias(x, this.p(`${name}.w`), this.p(`${name}.b`));
  }

  /** `cond` is SiLU of the time embedding [N, width]. */
  private block(name: string, x: tf.Tensor3D, cond: tf.Tensor2D): tf.Tensor3D {
    const [n, l, d] = x.shape;
    const mods = tf.split(tf.reshape(this.dense(`${name}.adaln`, cond), [n, 1, 6 * d]), 6, 2) as tf.Tensor3D[];
    const [shiftA, scaleA, gateA, shiftM, scaleM, gateM] = mods;
    const a = this.attention(`${name}.attn`, modulate(layerNorm(x), shiftA, scaleA));
    let h = tf.add(x, tf.mul(gateA, a)) as tf.Tensor3D;
    const m = modulate(layerNorm(h), shiftM, scaleM);
    const flat = tf.reshape(m, [n * l, d]) as tf.Tensor2D;
    const mlp = this.dense(`${name}.mlp.fc2`, gelu(this.dense(`${name}.mlp.fc1`, flat)));
    h = tf.add(h, tf.mul(gateM, tf.reshape(mlp, [n, l, d]))) as tf.Tensor3D;
    return h;
  }

  /** Multi-head self-attention over the tokens (no bias on the scores, no dropout). */
  private attention(name: string, x: tf.Tensor3D): tf.Tensor3D {
    const [n, l, d] = x.shape;
    const heads = this.config.heads;
    const dh = d / heads;
    const qkv = this.dense(`${name}.qkv`, tf.reshape(x, [n * l, d]) as tf.Tensor2D);
    // [N*L, 3D] -> [3, N, H, L, dh]
    const split = tf.transpose(tf.reshape(qkv, [n, l, 3, heads, dh]), [2, 0, 3, 1, 4]);
    const [q, k, v] = tf.unstack(split, 0).map((t) => tf.reshape(t, [n * heads, l, dh]) as tf.Tensor3D);
    // Explicit transpose: faster than matMul(transposeB) on wasm (as in the UNet).
    const scores = tf.mul(tf.matMul(q, tf.transpose(k, [0, 2, 1])), 1 / Math.sqrt(dh));
    const o = tf.matMul(tf.softmax(scores), v);
    const merged = tf.reshape(tf.transpose(tf.reshape(o, [n, heads, l, dh]), [0, 2, 1, 3]), [n * l, d]) as tf.Tensor2D;
    return tf.reshape(this.dense(`${name}.proj`, merged), [n, l, d]) as tf.Tensor3D;
  }
}

/** LayerNorm over the last axis without affine parameters (DiT: elementwise_affine=False, eps 1e-6). */
function layerNorm(x: tf.Tensor3D): tf.Tensor3D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, LN_EPS))) as tf.Tensor3D;
}

/** x (1 + scale) + shift, with shift and scale [N, 1, D] broadcast over the tokens. */
function modulate(x: tf.Tensor3D, shift: tf.Tensor, scale: tf.Tensor): tf.Tensor3D {
  return tf.add(tf.mul(x, tf.add(scale, 1)), shift) as tf.Tensor3D;
}

function silu(x: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(x, tf.sigmoid(x));
}

/** GELU, tanh approximation (DiT's MLP): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
function gelu(x: tf.Tensor2D): tf.Tensor2D {
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(x, tf.square(x)), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/**
 * DiT's fixed 2-D sin-cos position embedding [grid*grid, width], token (row i, column j) at
 * i * grid + j: the first half of the channels embeds the column, the second the row, each as
 * [sin(pos w_k), cos(pos w_k)] with w_k = 10000^(-k / (width/4)).
 */
export function sinCosPosEmbed2d(width: number, grid: number): Float32Array {
  if (width % 4 !== 0) throw new Error(`sin-cos position embedding needs a width divisible by 4, got ${width}`);
  const quarter = width / 4;
  const out = new Float32Array(grid * grid * width);
  for (let i = 0; i < grid; i++) {
    for (let j = 0; j < grid; j++) {
      const base = (i * grid + j) * width;
      for (let k = 0; k < quarter; k++) {
        const w = 1 / 10000 ** (k / quarter);
        out[base + k] = Math.sin(j * w);
        out[base + quarter + k] = Math.cos(j * w);
        out[base + 2 * quarter + k] = Math.sin(i * w);
        out[base + 3 * quarter + k] = Math.cos(i * w);
      }
    }
  }
  return out;
}
