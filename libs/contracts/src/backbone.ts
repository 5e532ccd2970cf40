import { ditLayout, type DiTConfig } from './dit-layout';
import type { UNetConfig } from './sweep-spec.schema';
import { decoderBlockNames, unetLayout, type BlockInfo } from './unet-layout';

/** The network a run trains: a UNet (the default) or a DiT, with its configuration. */
export type BackboneName = 'unet' | 'dit';
export const BACKBONES = ['unet', 'dit'] as const satisfies readonly BackboneName[];

export type BackboneSpec = { backbone: 'unet'; unet: UNetConfig } | { backbone: 'dit'; dit: DiTConfig };

/** Where a task or run keeps its network: `unet` or `dit`, exactly one of them. */
export interface BackboneFields {
  unet?: UNetConfig | undefined;
  dit?: DiTConfig | undefined;
}

/** The backbone of a task (or run): its `dit` when it has one, else its `unet`; throws when it has both or neither. */
export function backboneOf(fields: BackboneFields): BackboneSpec {
  if (fields.dit && fields.unet) throw new Error('a model has either a unet or a dit configuration, not both');
  if (fields.dit) return { backbone: 'dit', dit: fields.dit };
  if (fields.unet) return { backbone: 'unet', unet: fields.unet };
  throw new Error('a model needs a unet or a dit configuration');
}

/** The blocks a probe can tap, with their output shapes, on images of `imageSize` x `imageSize` x `imageChannels`. */
export function backboneLayout(b: BackboneSpec, imageSize: number, imageChannels: number): BlockInfo[] {
  return b.backbone === 'dit' ? ditLayout({ ...b.dit, imageSize }) : unetLayout({ ...b.unet, imageSize, imageChannels });
}

/** Every block name a probe may tap. */
export function backboneTappableLayers(b: BackboneSpec, imageSize: number, imageChannels: number): string[] {
  return backboneLayout(b, imageSize, imageChannels).map((l) => l.name);
}

/** What `layers: all` means: every decoder block of a UNet (the reference's layers), every block of a DiT. */
export function backboneDefaultLayers(b: BackboneSpec, imageSize: number, imageChannels: number): string[] {
  return b.backbone === 'dit' ? ditLayout({ ...b.dit, imageSize }).map((l) => l.name) : decoderBlockNames({ ...b.unet, imageSize, imageChannels });
}

/** The task or run fields of a backbone: `{ unet }` or `{ dit }`. */
export function backboneFields(b: BackboneSpec): { unet: UNetConfig } | { dit: DiTConfig } {
  return b.backbone === 'dit' ? { dit: b.dit } : { unet: b.unet };
}

/**
 * The backbone of a full model configuration as a checkpoint manifest stores it: a DiT's is tagged
 * `backbone: 'dit'`, a UNet's has no tag (every checkpoint written before the DiT).
 */
export function backboneOfModelConfig(config: object): BackboneSpec {
  const c = config as Record<string, never>;
  if (c['backbone'] === 'dit') {
    const { depth, width, heads, patch, mlpRatio } = c;
    return { backbone: 'dit', dit: { depth, width, heads, patch, mlpRatio } };
  }
  const { baseChannels, channelMults, blocksPerLevel, attentionResolutions, dropout, groups } = c;
  return { backbone: 'unet', unet: { baseChannels, channelMults, blocksPerLevel, attentionResolutions, dropout, groups } };
}
