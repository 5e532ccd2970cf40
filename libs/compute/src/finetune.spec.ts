import * as tf from '@tensorflow/tfjs';
import { createBackbone, extractFeatures, Rng, type UNetModelConfig } from '@ddae/diffusion';
import { trainLinearProbe } from '@ddae/probe';
import { selectBackend } from './backend';
import { finetuneCell, type FinetuneData, type FinetuneOptions } from './finetune.task';

jest.setTimeout(120_000);

const CONFIG: UNetModelConfig = { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0, groups: 4, imageSize: 8, imageChannels: 1 };

/** 4 classes: a bright 3x3 blob in one quadrant of an 8x8 image, at a random place inside it, over noise. */
function blobs(n: number, seed: number): { x: Float32Array; y: Uint8Array } {
  const rng = new Rng(seed);
  const noise = rng.normal(n * 64);
  const x = new Float32Array(n * 64);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    y[i] = c;
    const oy = (c >> 1) * 4 + (Math.abs(Math.floor(noise[i * 64] * 7)) % 2);
    const ox = (c & 1) * 4 + (Math.abs(Math.floor(noise[i * 64 + 1] * 7)) % 2);
    for (let p = 0; p < 64; p++) x[i * 64 + p] = Math.max(-1, Math.min(1, -0.6 + 0.3 * noise[i * 64 + p]));
    for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) if (oy + dy < 8 && ox + dx < 8) x[i * 64 + (oy + dy) * 8 + ox + dx] = 0.9;
  }
  return { x, y };
}

describe('fine-tuning on the native kernels', () => {
  beforeAll(async () => {
    expect((await selectBackend('native')).backend).toBe('native');
  });

  it('changes the network up to the tap, not after it, and beats the linear probe of the same cell', async () => {
    const train = blobs(128, 1);
    const test = blobs(64, 2);
    const keys = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);
    const data: FinetuneData = { trainX: train.x, trainY: train.y, trainKeys: keys(128), testX: test.x, testY: test.y, testKeys: keys(64), classes: 4 };
    const layer = 'out_3';
    const t = 100;
    const net = createBackbone(CONFIG, 0);
    // The linear probe of the cell: gap features of the same network, same noise, same test draw.
    const f = await extractFeatures(net, 'ddpm', train.x, 128, t, [layer], { noiseKeys: data.trainKeys });
    const g = await extractFeatures(net, 'ddpm', test.x, 64, t, [layer], { noiseKeys: data.testKeys, noiseSeed: 0x7e57 });
    const dim = f[layer].length / 128;
    const linear = await trainLinearProbe({ x: f[layer], y: train.y, n: 128, dim }, { x: g[layer], y: test.y, n: 64, dim }, { epochs: 10, batchSize: 32, learningRate: 1e-2, seed: 0, standardize: true, classes: 4 });
    const weights = (name: string) => Float32Array.from((net.params.get(name) as tf.Variable).dataSync());
    const stemBefore = weights('stem.w');
    const headBefore = weights('head.conv.w');
    const tensors = tf.memory().numTensors;
    const opts: FinetuneOptions = { method: 'ddpm', noiseLevel: t, layer, pooling: 'gap', noise: 'fixed', noiseSeed: 0, epochs: 10, batchSize: 32, learningRate: 3e-3, augment: null, standardize: true, seed: 0 };
    const tuned = await finetuneCell(net, data, opts);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tuned.featureDim).toBe(dim);
    // Backprop reached the first layer; the output head (after out_3) never ran, so it kept its weights.
    expect(weights('stem.w')).not.toEqual(stemBefore);
    expect(weights('head.conv.w')).toEqual(headBefore);
    // Measured (load ~10, native): linear 0.734, fine-tuned 1.000. The quadrant of a blob is
    // positional; global-average features of an untrained network keep little of it, training
    // the convolutions recovers it. A margin of 0.1 leaves room for other kernels' rounding.
    expect(tuned.accuracy).toBeGreaterThanOrEqual(linear.accuracy + 0.1);
    net.dispose();
  });

  it('fine-tunes a DiT up to its tapped block: blocks after it and the final layer keep their weights', async () => {
    const dit = createBackbone({ backbone: 'dit', depth: 2, width: 16, heads: 2, patch: 2, mlpRatio: 2, imageSize: 8, imageChannels: 1 }, 0);
    const train = blobs(16, 1);
    const test = blobs(8, 2);
    const keys = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);
    const data: FinetuneData = { trainX: train.x, trainY: train.y, trainKeys: keys(16), testX: test.x, testY: test.y, testKeys: keys(8), classes: 4 };
    const snapshot = () => new Map([...dit.params].map(([name, v]) => [name, Float32Array.from(v.dataSync())]));
    const before = snapshot();
    const tensors = tf.memory().numTensors;
    const tuned = await finetuneCell(dit, data, { method: 'ddpm', noiseLevel: 50, layer: 'blk_1', pooling: 'avg2', noise: 'fresh', noiseSeed: 0, epochs: 2, batchSize: 8, learningRate: 1e-2, augment: { pad: 1, flip: true }, standardize: true, seed: 0 });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tuned.featureDim).toBe(2 * 2 * 16);
    const after = snapshot();
    const changed = [...before.keys()].filter((name) => !(after.get(name) as Float32Array).every((x, i) => x === (before.get(name) as Float32Array)[i]));
    expect(changed).toContain('patch.w');
    expect(changed.some((n) => n.startsWith('blk_1.'))).toBe(true);
    expect(changed.filter((n) => n.startsWith('blk_2.') || n.startsWith('final.'))).toEqual([]);
    dit.dispose();
  });

  it('refuses an unknown layer, naming the known ones', async () => {
    const net = createBackbone(CONFIG, 0);
    const data: FinetuneData = { trainX: new Float32Array(64 * 4), trainY: new Uint8Array(4), trainKeys: [0, 1, 2, 3], testX: new Float32Array(64), testY: new Uint8Array(1), testKeys: [0], classes: 4 };
    await expect(finetuneCell(net, data, { method: 'ddpm', noiseLevel: 0, layer: 'blk_1', pooling: 'gap', noise: 'fixed', noiseSeed: 0, epochs: 1, batchSize: 4, learningRate: 1e-3, augment: null, standardize: false, seed: 0 })).rejects.toThrow(/unknown layer "blk_1"; known: in_1/);
    net.dispose();
  });
});
