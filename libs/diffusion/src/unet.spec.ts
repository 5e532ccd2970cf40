import * as tf from '@tensorflow/tfjs';
import { unetLayout } from '@ddae/contracts';
import { UNet, type UNetModelConfig } from './unet';

const cfg: UNetModelConfig = { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [4], dropout: 0.1, groups: 4, imageSize: 8, imageChannels: 1 };

describe('UNet', () => {
  beforeAll(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('taps every layout block with its layout shape', () => {
    const unet = new UNet(cfg, 0);
    const layout = unetLayout(cfg);
    const names = layout.map((b) => b.name);
    expect(names).toEqual(['in_1', 'down_1', 'in_2', 'mid_1', 'mid_2', 'out_1', 'out_2', 'out_3', 'out_4']);
    const before = tf.memory().numTensors;
    const [output, ...taps] = tf.tidy(() => {
      const r = unet.forward(tf.zeros([2, 8, 8, 1]), tf.tensor1d([0.1, 0.5]), { training: false, taps: names });
      return [r.output, ...names.map((n) => r.taps[n])];
    });
    expect(output.shape).toEqual([2, 8, 8, 1]);
    layout.forEach((b, i) => expect(taps[i].shape).toEqual([2, b.resolution, b.resolution, b.channels]));
    expect(() => tf.tidy(() => unet.forward(tf.zeros([1, 8, 8, 1]), tf.tensor1d([0]), { training: false, taps: ['out_9'] }).output)).toThrow(/unknown tap/);
    tf.dispose([output, ...taps]);
    expect(tf.memory().numTensors).toBe(before);
    unet.dispose();
  });

  it('initialises deterministically from its seed and counts parameters', () => {
    const a = new UNet(cfg, 3);
    const b = new UNet(cfg, 3);
    const c = new UNet(cfg, 4);
    const w = (u: UNet) => Array.from((u.params.get('in_1.conv1.w') as tf.Variable).dataSync());
    expect(w(a)).toEqual(w(b));
    expect(w(a)).not.toEqual(w(c));
    let n = 0;
    for (const v of a.params.values()) n += v.size;
    expect(a.parameterCount()).toBe(n);
    // The tiny preset at 32x32x1 is about 0.1 M parameters (contracts' promise).
    const tiny = new UNet({ baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4, imageSize: 32, imageChannels: 1 }, 0);
    expect(tiny.parameterCount()).toBeGreaterThan(20_000);
    expect(tiny.parameterCount()).toBeLessThan(200_000);
    [a, b, c, tiny].forEach((u) => u.dispose());
  });

  it('rejects groups that do not divide the channels', () => {
    expect(() => new UNet({ ...cfg, groups: 3 }, 0)).toThrow(/groups/);
  });
});
