import * as tf from '@tensorflow/tfjs';
import { unetLayout } from '@ddae/contracts';
import { isDiTConfig, type ModelConfig } from './backbone';
import type { DiTModelConfig } from './dit';

/**
 * A model or batch that the active backend cannot hold: checked before any work, so the job fails
 * with the limit's name instead of a crash or a silently dropped GPU command.
 */
export class DeviceLimitError extends Error {
  override name = 'DeviceLimitError';
}

/** The largest tensor the active backend can compute on, when it has such a limit (webgpu: a shader binds one buffer per tensor). */
export interface TensorLimit {
  bytes: number;
  /** The limit's name, for messages (e.g. `maxStorageBufferBindingSize`). */
  name: string;
}

/**
 * The active backend's per-tensor limit: on webgpu the smaller of the device's
 * maxStorageBufferBindingSize and maxBufferSize; undefined on backends without one (their tensors
 * live in host memory). Read from the backend object, so this library needs no GPU package.
 */
export function backendTensorLimit(): TensorLimit | undefined {
  const limits = (tf.backend() as unknown as { device?: { limits?: Record<string, number> } }).device?.limits;
  const binding = limits?.['maxStorageBufferBindingSize'];
  const buffer = limits?.['maxBufferSize'];
  if (!binding || !buffer) return undefined;
  return binding <= buffer ? { bytes: binding, name: 'maxStorageBufferBindingSize' } : { bytes: buffer, name: 'maxBufferSize' };
}

/**
 * Floats per image of the largest tensor a training step of this UNet creates, and where: the
 * stem and head, each block's input (a decoder block's is the concatenation with its skip) and
 * output, attention's score matrix (pixels^2) and the nearest-x2 upsampling. Gradients have the
 * same shapes; convolutions on webgpu need no im2col buffer.
 */
export function largestTensorPerImage(config: ModelConfig): { floats: number; where: string } {
  if (isDiTConfig(config)) return largestDiTTensorPerImage(config);
  const s2 = config.imageSize * config.imageSize;
  let best = { floats: s2 * Math.max(config.baseChannels, config.imageChannels), where: 'stem' };
  const see = (floats: number, where: string): void => {
    if (floats > best.floats) best = { floats, where };
  };
  const skips = [config.baseChannels];
  let ch = config.baseChannels;
  const layout = unetLayout(config);
  for (const [i, b] of layout.entries()) {
    const px = b.resolution * b.resolution;
    let cin = ch;
    if (b.kind === 'encoder') skips.push(b.channels);
    if (b.kind === 'downsample') skips.push(b.channels);
    if (b.kind === 'decoder') cin = ch + (skips.pop() as number);
    if (b.kind !== 'downsample') see(px * cin, `${b.name} input`);
    see(px * b.channels, `${b.name} output`);
    if (b.attention) {
      see(px * px, `${b.name} attention scores`);
      see(3 * px * b.channels, `${b.name} attention qkv`);
    }
    const next = layout[i + 1];
    if (b.kind === 'decoder' && next && next.resolution > b.resolution) see(4 * px * b.channels, `${b.name} upsampling`);
    ch = b.channels;
  }
  return best;
}

/**
 * The DiT's largest tensors per image: the attention scores (heads x tokens^2), qkv (3 x tokens x
 * width), the MLP's hidden layer (mlpRatio x tokens x width), the patches and the output image.
 */
function largestDiTTensorPerImage(config: DiTModelConfig): { floats: number; where: string } {
  const tokens = (config.imageSize / config.patch) ** 2;
  const candidates: { floats: number; where: string }[] = [
    { floats: config.imageSize * config.imageSize * config.imageChannels, where: 'patches' },
    { floats: config.heads * tokens * tokens, where: 'attention scores' },
    { floats: 3 * tokens * config.width, where: 'attention qkv' },
    { floats: config.mlpRatio * tokens * config.width, where: 'MLP hidden layer' },
  ];
  return candidates.reduce((a, b) => (b.floats > a.floats ? b : a));
}

/**
 * Images per forward (and backward) pass that keep every tensor within the backend's limit:
 * `wanted`, or fewer where the limit requires it (gradients of micro-batches are summed, features
 * and samples go batch by batch, so this changes memory, not results).
 * @throws DeviceLimitError when one image alone does not fit, naming the tensor and the limit
 */
export function imagesPerPass(config: ModelConfig, wanted: number, limit = backendTensorLimit()): number {
  if (!limit) return wanted;
  const { floats, where } = largestTensorPerImage(config);
  const fit = Math.floor(limit.bytes / (4 * floats));
  if (fit < 1) {
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    throw new DeviceLimitError(
      `this ${isDiTConfig(config) ? 'DiT' : 'UNet'} does not fit the GPU: one image needs a ${mib(4 * floats)} tensor (${where}), above the adapter's ${limit.name} of ${mib(limit.bytes)}; use a smaller model (${isDiTConfig(config) ? 'narrower, or a larger patch' : 'fewer channels, attention at lower resolutions'})`,
    );
  }
  return Math.min(wanted, fit);
}
