import type * as tf from '@tensorflow/tfjs';
import { backboneOf, type BackboneFields, type BlockInfo } from '@ddae/contracts';
import { DiT, type DiTModelConfig } from './dit';
import { UNet, type ForwardOptions, type ForwardResult, type UNetModelConfig } from './unet';

/** A network's full configuration: a UNet's (untagged, as in every checkpoint before the DiT) or a DiT's (`backbone: 'dit'`). */
export type ModelConfig = UNetModelConfig | DiTModelConfig;

/**
 * What the trainer, the feature pass, the samplers and checkpoints need of a network: named
 * parameters, a forward pass with taps, and the layout of the blocks it can tap.
 */
export interface Backbone {
  readonly config: ModelConfig;
  /** The blocks `forward` can tap, with their output resolution and channels. */
  readonly layout: BlockInfo[];
  /** Named parameters in creation order (the checkpoint order). */
  readonly params: Map<string, tf.Variable>;
  /** One forward pass; the caller owns what it returns (wrap calls in `tf.tidy`). */
  forward(x: tf.Tensor4D, tInput: tf.Tensor1D, opts: ForwardOptions): ForwardResult;
  parameterCount(): number;
  dispose(): void;
}

export function isDiTConfig(config: ModelConfig): config is DiTModelConfig {
  return (config as Partial<DiTModelConfig>).backbone === 'dit';
}

/** 'unet' or 'dit'. */
export function backboneName(config: ModelConfig): 'unet' | 'dit' {
  return isDiTConfig(config) ? 'dit' : 'unet';
}

/** The network of `config`, initialised from `seed`. */
export function createBackbone(config: ModelConfig, seed = 0): Backbone {
  return isDiTConfig(config) ? new DiT(config, seed) : new UNet(config, seed);
}

/** The full configuration of a task's network (`unet` or `dit`) on images of the given shape. */
export function modelConfigOf(fields: BackboneFields, imageSize: number, imageChannels: number): ModelConfig {
  const b = backboneOf(fields);
  return b.backbone === 'dit' ? { backbone: 'dit', ...b.dit, imageSize, imageChannels } : { ...b.unet, imageSize, imageChannels };
}
