/**
 * The UNet's block layout, computed from its configuration alone (no TensorFlow.js), so that the
 * API can validate the layer names of a sweep and the diffusion library can build the same blocks.
 *
 * Names are stable and address the blocks a probe can tap:
 * - `in_1..in_K`   encoder residual blocks (K = levels x blocksPerLevel),
 * - `down_1..`     the stride-2 downsampling convolutions between levels,
 * - `mid_1, mid_2` the two residual blocks at the lowest resolution,
 * - `out_1..out_N` decoder residual blocks, deepest first (N = levels x (blocksPerLevel + 1)),
 *   as in the reference code, whose decoder blocks are the layers a DDAE sweep addresses.
 */
export interface UNetLayoutConfig {
  /** Input height and width in pixels. Each level below the first halves it. */
  imageSize: number;
  /** Input channels (1 for Fashion-MNIST, 3 for CIFAR-10). */
  imageChannels: number;
  /** Channels of the first level. */
  baseChannels: number;
  /** Channel multiplier per level; its length is the number of levels. */
  channelMults: number[];
  /** Residual blocks per encoder level (the decoder has one more per level). */
  blocksPerLevel: number;
  /** Resolutions (in pixels) whose blocks are followed by single-head self-attention. */
  attentionResolutions: number[];
}

/** UNet blocks (encoder, downsample, middle, decoder) and DiT blocks (transformer, see dit-layout). */
export type BlockKind = 'encoder' | 'downsample' | 'middle' | 'decoder' | 'transformer';

export interface BlockInfo {
  name: string;
  kind: BlockKind;
  /** Spatial size of the block's output (a DiT block: the side of its token grid). */
  resolution: number;
  /** Channels of the block's output. */
  channels: number;
  /** Whether self-attention follows the residual block. */
  attention: boolean;
}

export function unetLayout(config: UNetLayoutConfig): BlockInfo[] {
  const levels = config.channelMults.length;
  const blocks: BlockInfo[] = [];
  let resolution = config.imageSize;
  let enc = 0;
  for (let level = 0; level < levels; level++) {
    const channels = config.baseChannels * config.channelMults[level];
    for (let b = 0; b < config.blocksPerLevel; b++) {
      enc += 1;
      blocks.push({ name: `in_${enc}`, kind: 'encoder', resolution, channels, attention: config.attentionResolutions.includes(resolution) });
    }
    if (level < levels - 1) {
      resolution = resolution / 2;
      blocks.push({ name: `down_${level + 1}`, kind: 'downsample', resolution, channels, attention: false });
    }
  }
  const deepest = config.baseChannels * config.channelMults[levels - 1];
  blocks.push({ name: 'mid_1', kind: 'middle', resolution, channels: deepest, attention: true });
  blocks.push({ name: 'mid_2', kind: 'middle', resolution, channels: deepest, attention: false });
  let dec = 0;
  for (let level = levels - 1; level >= 0; level--) {
    const channels = config.baseChannels * config.channelMults[level];
    for (let b = 0; b < config.blocksPerLevel + 1; b++) {
      dec += 1;
      blocks.push({ name: `out_${dec}`, kind: 'decoder', resolution, channels, attention: config.attentionResolutions.includes(resolution) });
    }
    if (level > 0) resolution = resolution * 2;
  }
  return blocks;
}

/** The decoder block names, `out_1..out_N`, deepest first. */
export function decoderBlockNames(config: UNetLayoutConfig): string[] {
  return unetLayout(config).filter((b) => b.kind === 'decoder').map((b) => b.name);
}

/** Every block name a probe may tap. */
export function tappableBlockNames(config: UNetLayoutConfig): string[] {
  return unetLayout(config).map((b) => b.name);
}
