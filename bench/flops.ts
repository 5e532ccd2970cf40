import { unetLayout, type BlockInfo } from '@ddae/contracts';
import type { DiTModelConfig, ModelConfig, UNetModelConfig } from '@ddae/diffusion';

/**
 * Analytical FLOPs of one image through our UNet (libs/diffusion/src/unet.ts), walking the same
 * layout its constructor builds. A multiply-add counts 2 FLOPs; counted: every convolution
 * (2 k^2 Cin Cout Ho Wo), every dense layer (2 Cin Cout per row) and the attention products
 * (2 L^2 C each for QK^T and AV). Not counted: GroupNorm, SiLU, bias and residual adds, softmax,
 * upsampling, concatenation, pooling (all O(activations), well under 2 % of the total here).
 */
export function forwardFlopsPerImage(config: ModelConfig): { total: number; conv: number; dense: number; attention: number } {
  if ((config as DiTModelConfig).backbone === 'dit') return ditForwardFlopsPerImage(config as DiTModelConfig);
  return unetForwardFlopsPerImage(config as UNetModelConfig);
}

/**
 * Analytical FLOPs of one image through our DiT (libs/diffusion/src/dit.ts): the patch embedding
 * (counted as `conv`: 2 p^2 C D per token), the dense layers (time MLP and adaLN once per image;
 * qkv, output projection, MLP and the final linear per token) and the attention products
 * (2 L^2 D each for QK^T and AV). Not counted: LayerNorm, GELU, modulation, softmax, adds.
 */
function ditForwardFlopsPerImage(c: DiTModelConfig): { total: number; conv: number; dense: number; attention: number } {
  const l = (c.imageSize / c.patch) ** 2;
  const d = c.width;
  const pp = c.patch * c.patch * c.imageChannels;
  const conv = 2 * pp * d * l;
  let dense = 2 * 256 * d + 2 * d * d + 2 * d * 2 * d + 2 * d * pp * l; // time MLP, final adaLN, final linear
  let attention = 0;
  for (let i = 0; i < c.depth; i++) {
    dense += 2 * d * 6 * d; // adaLN, once per image
    dense += l * (2 * d * 3 * d + 2 * d * d + 2 * 2 * d * c.mlpRatio * d); // qkv, proj, MLP
    attention += 2 * (2 * l * l * d);
  }
  return { total: conv + dense + attention, conv, dense, attention };
}

function unetForwardFlopsPerImage(config: UNetModelConfig): { total: number; conv: number; dense: number; attention: number } {
  const layout = unetLayout(config);
  const emb = config.baseChannels * 4;
  let conv = 0;
  let dense = 0;
  let attention = 0;
  const convF = (k: number, cin: number, cout: number, res: number): number => 2 * k * k * cin * cout * res * res;
  const resBlock = (cin: number, cout: number, res: number, attn: boolean): void => {
    conv += convF(3, cin, cout, res) + convF(3, cout, cout, res);
    if (cin !== cout) conv += convF(1, cin, cout, res);
    dense += 2 * emb * cout; // time-embedding projection, once per image
    if (attn) {
      const l = res * res;
      dense += 2 * l * cout * 3 * cout + 2 * l * cout * cout; // qkv and output projections
      attention += 2 * (2 * l * l * cout); // QK^T and AV
    }
  };
  dense += 2 * config.baseChannels * emb + 2 * emb * emb; // time embedding MLP
  conv += convF(3, config.imageChannels, config.baseChannels, config.imageSize); // stem
  const skips: number[] = [config.baseChannels];
  let ch = config.baseChannels;
  const upsampleAfter = (b: BlockInfo, i: number): boolean => i + 1 < layout.length && layout[i + 1].resolution > b.resolution;
  layout.forEach((b, i) => {
    if (b.kind === 'encoder' || b.kind === 'middle') {
      resBlock(ch, b.channels, b.resolution, b.attention);
      ch = b.channels;
      if (b.kind === 'encoder') skips.push(ch);
    } else if (b.kind === 'downsample') {
      conv += convF(3, ch, b.channels, b.resolution); // stride 2: output resolution
      skips.push(b.channels);
    } else {
      const skip = skips.pop() as number;
      resBlock(ch + skip, b.channels, b.resolution, b.attention);
      ch = b.channels;
      if (upsampleAfter(b, i)) conv += convF(3, ch, ch, b.resolution * 2);
    }
  });
  conv += convF(3, ch, config.imageChannels, config.imageSize); // head
  return { total: conv + dense + attention, conv, dense, attention };
}

/** A training step counted as 3x the forward pass: backward computes input and weight gradients, each about one forward's FLOPs. */
export const TRAIN_FLOPS_FACTOR = 3;
