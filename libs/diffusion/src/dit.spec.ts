import * as tf from '@tensorflow/tfjs';
import { DIT_PRESETS, type PretrainTask } from '@ddae/contracts';
import { createBackbone, modelConfigOf } from './backbone';
import { loadForInference, readCheckpointData } from './checkpoint';
import { DiT, sinCosPosEmbed2d, type DiTModelConfig } from './dit';
import { extractFeatures } from './features';
import { sampleUNet } from './sampling';
import { createTrainer, pretrain } from './train';
import { TINY_IMAGES as images, TINY_N as N, TINY_PRETRAIN_BASE, TINY_SHAPE as SHAPE, usePretrainTasks } from './training.fixture';

const cfg: DiTModelConfig = { backbone: 'dit', depth: 2, width: 16, heads: 2, patch: 2, mlpRatio: 2, imageSize: 8, imageChannels: 1 };
/** The tiny DiT task (cfg): 2 steps, no warm-up, a checkpoint every step. */
const DIT_TASK = { ...TINY_PRETRAIN_BASE, dit: { depth: cfg.depth, width: cfg.width, heads: cfg.heads, patch: cfg.patch, mlpRatio: cfg.mlpRatio }, steps: 2, warmupSteps: 0, checkpointEvery: 1 };

jest.setTimeout(60_000);

describe('DiT', () => {
  const task = usePretrainTasks('ddae-dit-', DIT_TASK);
  beforeAll(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('maps images to images and taps every block as a token grid', () => {
    const dit = new DiT(cfg, 0);
    expect(dit.layout.map((b) => [b.name, b.resolution, b.channels])).toEqual([
      ['blk_1', 4, 16],
      ['blk_2', 4, 16],
    ]);
    const before = tf.memory().numTensors;
    const [output, t1, t2] = tf.tidy(() => {
      const r = dit.forward(tf.randomNormal([3, 8, 8, 1]) as tf.Tensor4D, tf.tensor1d([0.1, 0.5, 0.9]), { training: true, taps: ['blk_1', 'blk_2'] });
      return [r.output, r.taps['blk_1'], r.taps['blk_2']];
    });
    expect(output.shape).toEqual([3, 8, 8, 1]);
    expect(t1.shape).toEqual([3, 4, 4, 16]);
    expect(t2.shape).toEqual([3, 4, 4, 16]);
    expect(() => tf.tidy(() => dit.forward(tf.zeros([1, 8, 8, 1]), tf.tensor1d([0]), { training: false, taps: ['out_1'] }).output)).toThrow(/unknown tap "out_1"/);
    tf.dispose([output, t1, t2]);
    expect(tf.memory().numTensors).toBe(before);
    dit.dispose();
  });

  it('patchifies and unpatchifies exactly: a patch embedding that copies pixels, read back by the final layer, is the identity', () => {
    // width = patch^2 x channels = 4 (multiple of 4 for the position embedding), patch 2, depth 1.
    const c: DiTModelConfig = { ...cfg, depth: 1, width: 4, heads: 1 };
    const dit = new DiT(c, 0);
    const eye = tf.eye(4);
    tf.tidy(() => {
      (dit.params.get('patch.w') as tf.Variable).assign(eye);
      (dit.params.get('final.linear.w') as tf.Variable).assign(eye);
    });
    const x = tf.tensor4d(Float32Array.from({ length: 64 }, (_, i) => i), [1, 8, 8, 1]);
    // With every block the identity and the final LayerNorm, the output is LN(x_patch + pos) per
    // token: compare against that computed by hand from the pixels.
    const out = tf.tidy(() => dit.forward(x, tf.tensor1d([0.3]), { training: false }).output);
    const got = out.dataSync();
    const pos = sinCosPosEmbed2d(4, 4);
    const px = x.dataSync();
    for (let gi = 0; gi < 4; gi++) {
      for (let gj = 0; gj < 4; gj++) {
        const tok = [0, 1, 2, 3].map((k) => px[(2 * gi + (k >> 1)) * 8 + 2 * gj + (k & 1)] + pos[(gi * 4 + gj) * 4 + k]);
        const mean = tok.reduce((a, b) => a + b) / 4;
        const v = tok.reduce((a, b) => a + (b - mean) ** 2, 0) / 4;
        tok.forEach((t, k) => expect(got[(2 * gi + (k >> 1)) * 8 + 2 * gj + (k & 1)]).toBeCloseTo((t - mean) / Math.sqrt(v + 1e-6), 3));
      }
    }
    tf.dispose([eye, x, out]);
    dit.dispose();
  });

  it('starts with every block the identity (adaLN-Zero) and a zero output; a non-zero modulation changes that', () => {
    const dit = new DiT({ ...cfg, depth: 3 }, 4);
    const names = ['blk_1', 'blk_2', 'blk_3'];
    const run = () =>
      tf.tidy(() => {
        const r = dit.forward(tf.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 7) as tf.Tensor4D, tf.tensor1d([0.2, 0.7]), { training: false, taps: names });
        return { out: r.output.dataSync(), taps: names.map((n) => r.taps[n].dataSync()) };
      });
    const init = run();
    expect(Math.max(...init.out.map(Math.abs))).toBe(0);
    // Every block passes its input through unchanged: all taps equal the patch + position embedding.
    for (const t of init.taps.slice(1)) expect(Array.from(t)).toEqual(Array.from(init.taps[0]));
    expect(Math.max(...init.taps[0].map(Math.abs))).toBeGreaterThan(0.1);
    // The test can fail: a non-zero adaLN bias (the gates) makes the blocks act.
    tf.tidy(() => (dit.params.get('blk_2.adaln.b') as tf.Variable).assign(tf.fill([6 * 16], 0.5)));
    const moved = run();
    expect(Array.from(moved.taps[0])).toEqual(Array.from(init.taps[0]));
    expect(Array.from(moved.taps[1])).not.toEqual(Array.from(init.taps[1]));
    dit.dispose();
  });

  it('initialises from its seed, sizes its presets and refuses impossible configurations', () => {
    const w = (d: DiT) => Array.from((d.params.get('blk_1.attn.qkv.w') as tf.Variable).dataSync());
    const [a, b, c] = [new DiT(cfg, 3), new DiT(cfg, 3), new DiT(cfg, 4)];
    expect(w(a)).toEqual(w(b));
    expect(w(a)).not.toEqual(w(c));
    const tiny = createBackbone(modelConfigOf({ dit: DIT_PRESETS['dit-tiny'] }, 32, 1));
    const small = createBackbone(modelConfigOf({ dit: DIT_PRESETS['dit-small'] }, 32, 1));
    expect(tiny).toBeInstanceOf(DiT);
    expect(tiny.parameterCount()).toBeGreaterThan(100_000);
    expect(tiny.parameterCount()).toBeLessThan(250_000);
    // dit-small matches the UNet preset small (~1 M parameters).
    expect(small.parameterCount()).toBeGreaterThan(700_000);
    expect(small.parameterCount()).toBeLessThan(1_300_000);
    expect(() => new DiT({ ...cfg, heads: 3, width: 16 }, 0)).toThrow(/not divisible by 3 heads/);
    expect(() => new DiT({ ...cfg, patch: 4, imageSize: 28 + 2 }, 0)).toThrow(/patch 4 does not divide 30x30/);
    // 28x28 (no padding) where the patch divides it.
    const d28 = new DiT({ ...cfg, imageSize: 28, patch: 4 }, 0);
    expect(d28.layout[0].resolution).toBe(7);
    [a, b, c, tiny, small, d28].forEach((m) => m.dispose());
  });

  it('trains with DDPM and EDM, checkpoints, and loads back as a DiT with its EMA weights', async () => {
    for (const method of ['ddpm', 'edm'] as const) {
      const before = tf.memory().numTensors;
      const out = await pretrain(task({ method }), images, N, {}, SHAPE);
      expect(tf.memory().numTensors).toBe(before);
      expect(Number.isFinite(out.finalCheckpoint.loss)).toBe(true);
      const { unet: model, manifest } = loadForInference(out.finalCheckpoint.path);
      expect(model).toBeInstanceOf(DiT);
      expect(manifest.config).toEqual(cfg);
      expect(manifest.method).toBe(method);
      const ema = readCheckpointData(out.finalCheckpoint.path).ema;
      for (const e of manifest.params) {
        expect(Array.from((model.params.get(e.name) as tf.Variable).dataSync())).toEqual(Array.from(ema.subarray(e.offset, e.offset + e.size)));
      }
      // Features of every block and a sample, from the loaded model.
      const feats = await extractFeatures(model, method, images.subarray(0, 3 * 64), 3, method === 'ddpm' ? 10 : 0.06, ['blk_1', 'blk_2'], { pooling: 'avg2' });
      expect(feats['blk_2']).toHaveLength(3 * 2 * 2 * 16);
      const gap = await extractFeatures(model, method, images.subarray(0, 3 * 64), 3, 0, ['blk_1'], { pooling: 'gap' });
      expect(gap['blk_1']).toHaveLength(3 * 16);
      const samples = await sampleUNet(model, method, { n: 2, steps: 2 });
      expect(samples).toHaveLength(2 * 64);
      expect(samples.every((v) => Number.isFinite(v) && v >= -1 && v <= 1)).toBe(true);
      model.dispose();
    }
  });

  it('resumes bit-identically and refuses a checkpoint of another backbone', async () => {
    const straight = await pretrain(task({ steps: 3 }), images, N, {}, SHAPE);
    const t = task({ steps: 1 });
    await pretrain(t, images, N, {}, SHAPE);
    const resumed = await pretrain({ ...t, steps: 3 }, images, N, {}, SHAPE);
    const a = readCheckpointData(straight.finalCheckpoint.path);
    const b = readCheckpointData(resumed.finalCheckpoint.path);
    expect(Buffer.from(b.weights.buffer).equals(Buffer.from(a.weights.buffer))).toBe(true);
    expect(Buffer.from(b.ema.buffer).equals(Buffer.from(a.ema.buffer))).toBe(true);
    const unetTask: PretrainTask = { ...t, dit: undefined, unet: { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0, groups: 4 }, steps: 4 };
    await expect(pretrain(unetTask, images, N, {}, SHAPE)).rejects.toThrow(/holds another model/);
  });

  it('lowers the loss in a few steps on a tiny configuration', async () => {
    const trainer = createTrainer(task({ steps: 14, batchSize: 8, learningRate: 3e-3 }), images, N, SHAPE);
    const losses: number[] = [];
    for (let i = 0; i < 14; i++) losses.push(await trainer.step());
    trainer.dispose();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // The zero-initialised output gives loss ~1 (the noise's variance) at first.
    expect(mean(losses.slice(0, 4))).toBeGreaterThan(0.8);
    expect(mean(losses.slice(-3))).toBeLessThan(0.8 * mean(losses.slice(0, 4)));
  });
});
