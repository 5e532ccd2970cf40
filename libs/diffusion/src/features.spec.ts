import * as tf from '@tensorflow/tfjs';
import { extractFeatures } from './features';
import { UNet, type UNetModelConfig } from './unet';

/** A 28x28 model: taps at 28, 14 and 7 pixels, which a 4x4 grid divides only at 28. */
const cfg: UNetModelConfig = { baseChannels: 4, channelMults: [1, 2, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0, groups: 4, imageSize: 28, imageChannels: 1 };

/** PyTorch's AdaptiveAvgPool2d to g x g, flattened cell-major, in plain JS. */
function adaptivePool(tap: Float32Array, n: number, h: number, w: number, c: number, g: number): number[] {
  const cells = (L: number) => Array.from({ length: g }, (_, i) => [Math.floor((i * L) / g), Math.ceil(((i + 1) * L) / g)]);
  const out: number[] = [];
  for (let k = 0; k < n; k++)
    for (const [r0, r1] of cells(h))
      for (const [c0, c1] of cells(w))
        for (let ch = 0; ch < c; ch++) {
          let sum = 0;
          for (let y = r0; y < r1; y++) for (let x = c0; x < c1; x++) sum += tap[((k * h + y) * w + x) * c + ch];
          out.push(sum / ((r1 - r0) * (c1 - c0)));
        }
  return out;
}

describe('extractFeatures pooling', () => {
  beforeAll(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('pools 7x7 and 14x14 taps of a 28x28 model into adaptive 4x4 cells (avg4), like the probe library', async () => {
    const unet = new UNet(cfg, 1);
    const n = 1;
    const images = Float32Array.from({ length: n * 28 * 28 }, (_, i) => Math.sin(i * 0.13));
    const layers = unet.layout.filter((b) => b.kind === 'decoder').map((b) => b.name);
    // Clean images (t = 0): the features are the taps of one forward pass, pooled.
    const features = await extractFeatures(unet, 'ddpm', images, n, 0, layers, { pooling: 'avg4' });
    const taps = tf.tidy(() => unet.forward(tf.tensor4d(images, [n, 28, 28, 1]), tf.fill([n], 0) as tf.Tensor1D, { training: false, taps: layers }).taps);
    const resolutions = new Set<number>();
    for (const layer of layers) {
      const [, h, w, c] = taps[layer].shape;
      resolutions.add(h);
      const want = adaptivePool(taps[layer].dataSync() as Float32Array, n, h, w, c, 4);
      expect(features[layer]).toHaveLength(want.length);
      let err = 0;
      want.forEach((v, i) => (err = Math.max(err, Math.abs(v - features[layer][i]))));
      expect(err).toBeLessThan(1e-5);
    }
    expect([...resolutions].sort((a, b) => a - b)).toEqual([7, 14, 28]);
    tf.dispose(Object.values(taps));
    unet.dispose();
  });
});
