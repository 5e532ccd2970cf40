import { z } from 'zod';
import type { BlockInfo } from './unet-layout';

/**
 * The DiT backbone (Peebles and Xie 2023, "Scalable Diffusion Models with Transformers"): the
 * image cut into patch x patch tokens, `depth` transformer blocks conditioned on the time embedding
 * by adaLN-Zero, a final adaLN layer and a linear map back to patches. Computed from the
 * configuration alone (no TensorFlow.js), so the API validates layer names and the diffusion
 * library builds the same blocks.
 *
 * Tap names: `blk_1..blk_N`, the token output of each block in order; a tap is the token grid
 * (imageSize / patch) x (imageSize / patch) with `width` channels, so pooling over tokens is
 * pooling over that grid (gap: every token; avg2 / avg4: a 2x2 / 4x4 grid of token groups).
 */

/** Limits of a DiT configuration (a spec above them is refused with 400). */
export const DIT_LIMITS = { maxDepth: 32, maxWidth: 1024, maxHeads: 16, maxPatch: 8 } as const;

export const ditConfigSchema = z
  .object({
    /** Transformer blocks. */
    depth: z.number().int().positive().max(DIT_LIMITS.maxDepth),
    /** Token width (hidden size). Must be divisible by `heads`. */
    width: z.number().int().positive().max(DIT_LIMITS.maxWidth),
    /** Attention heads per block. */
    heads: z.number().int().positive().max(DIT_LIMITS.maxHeads),
    /** Patch size in pixels; must divide the (padded) image size. */
    patch: z.number().int().positive().max(DIT_LIMITS.maxPatch),
    /** Hidden size of each block's MLP as a multiple of `width`. Default 4 (as in DiT). */
    mlpRatio: z.number().int().min(1).max(8).default(4),
  })
  .strict();
export type DiTConfig = z.output<typeof ditConfigSchema>;

/**
 * DiT sizes that train on 2 CPU cores on 32x32 images. `dit-small` (~1 M parameters) matches the
 * UNet preset `small`; `dit-tiny` (~0.17 M) is for tests and demos.
 */
export const DIT_PRESETS = {
  'dit-tiny': { depth: 4, width: 48, heads: 4, patch: 4, mlpRatio: 4 },
  'dit-small': { depth: 6, width: 96, heads: 4, patch: 2, mlpRatio: 4 },
} as const satisfies Record<string, DiTConfig>;
export type DiTPreset = keyof typeof DIT_PRESETS;

export function isDiTPreset(name: string): name is DiTPreset {
  return Object.prototype.hasOwnProperty.call(DIT_PRESETS, name);
}

/** A preset name or a configuration, as a fresh configuration object. */
export function resolveDiT(dit: DiTPreset | DiTConfig): DiTConfig {
  return typeof dit === 'string' ? { ...DIT_PRESETS[dit] } : { ...dit };
}

/** What is wrong with a DiT on `imageSize` images (field and message), or null when it can be built. */
export function ditConfigProblem(config: DiTConfig, imageSize: number): { field: keyof DiTConfig; message: string } | null {
  if (config.width % config.heads !== 0) return { field: 'width', message: `width ${config.width} is not divisible by ${config.heads} heads` };
  if (config.width % 4 !== 0) return { field: 'width', message: `width ${config.width} must be a multiple of 4 (the 2-D sin-cos position embedding)` };
  if (imageSize % config.patch !== 0) return { field: 'patch', message: `patch ${config.patch} does not divide ${imageSize}x${imageSize} images` };
  return null;
}

export interface DiTLayoutConfig {
  imageSize: number;
  depth: number;
  width: number;
  patch: number;
}

/** The blocks of a DiT: `blk_1..blk_depth`, each on the token grid (imageSize / patch) with `width` channels. */
export function ditLayout(config: DiTLayoutConfig): BlockInfo[] {
  const grid = config.imageSize / config.patch;
  return Array.from({ length: config.depth }, (_, i) => ({ name: `blk_${i + 1}`, kind: 'transformer' as const, resolution: grid, channels: config.width, attention: true }));
}
