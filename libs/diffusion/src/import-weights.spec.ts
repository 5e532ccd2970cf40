import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { resolveUNet } from '@ddae/contracts';
import type { ModelConfig } from './backbone';
import { loadForInference, verifyCheckpoint } from './checkpoint';
import { importTorchCheckpoint, mapTorchTwinWeights, toTorchTwinTensors, torchTwinMapping, WeightMismatchError } from './import-weights';
import { readSafetensors, writeSafetensors, type SafetensorsFile } from './safetensors';
import { ddpmNoise } from './schedules';
import { createBackbone } from './backbone';

const FIXTURES = path.join(__dirname, '..', 'fixtures');
/** The fixture's UNet: the `tiny` preset on 32x32x1 (export_fixture.py's CFG). */
const UNET: ModelConfig = { ...resolveUNet('tiny'), imageSize: 32, imageChannels: 1 };
/** The fixture's DiT (export_fixture.py's DIT_CFG). */
const DIT: ModelConfig = { backbone: 'dit', depth: 2, width: 16, heads: 2, patch: 4, mlpRatio: 4, imageSize: 32, imageChannels: 1 };

function fixture(name: string): SafetensorsFile {
  return readSafetensors(fs.readFileSync(path.join(FIXTURES, name)));
}

/** NCHW (the twin's) to NHWC (ours). */
function nhwc(t: { shape: number[]; data: Float32Array }): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(t.data, t.shape as [number, number, number, number]), [0, 2, 3, 1]));
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

const made: string[] = [];
function tmpDir(): string {
  made.push(fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-import-')));
  return made[made.length - 1];
}
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('importing the PyTorch twin', () => {
  beforeAll(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  it('maps every UNet parameter to the twin name it has, with the layouts transposed explicitly', () => {
    const byOurs = new Map(torchTwinMapping(UNET).map((m) => [m.ours, m]));
    expect(byOurs.get('temb.dense1.w')).toMatchObject({ torch: 'temb1.weight', layout: 'linear', shape: [8, 32], torchShape: [32, 8] });
    expect(byOurs.get('stem.w')).toMatchObject({ torch: 'stem.weight', layout: 'conv', shape: [3, 3, 1, 8], torchShape: [8, 1, 3, 3] });
    expect(byOurs.get('in_1.norm1.g')).toMatchObject({ torch: 'blocks.in_1.norm1.weight', layout: 'same' });
    expect(byOurs.get('in_2.skip.w')).toMatchObject({ torch: 'blocks.in_2.skip.weight', torchShape: [16, 8, 1, 1] });
    expect(byOurs.get('down_1.w')?.torch).toBe('blocks.down_1.weight');
    expect(byOurs.get('mid_1.attn.qkv.w')).toMatchObject({ torch: 'blocks.mid_1.attn.qkv.weight', torchShape: [48, 16] });
    expect(byOurs.get('out_2.up.b')?.torch).toBe('ups.out_2.bias');
    expect(byOurs.get('head.norm.g')?.torch).toBe('head_norm.weight');
    expect(byOurs.get('head.conv.w')?.torch).toBe('head.weight');
    // Every twin key of the fixture, except the frequency buffer, is the image of exactly one of ours.
    const keys = [...fixture('twin-unet-tiny.safetensors').tensors.keys()].filter((k) => k !== 'freqs').sort();
    expect([...byOurs.values()].map((m) => m.torch).sort()).toEqual(keys);
  });

  it('maps every DiT parameter, the patchify conv to our patch matrix', () => {
    const byOurs = new Map(torchTwinMapping(DIT).map((m) => [m.ours, m]));
    expect(byOurs.get('patch.w')).toMatchObject({ torch: 'patchify.weight', layout: 'patch', shape: [16, 16], torchShape: [16, 1, 4, 4] });
    expect(byOurs.get('blk_2.attn.qkv.w')).toMatchObject({ torch: 'blocks.1.qkv.weight', torchShape: [48, 16] });
    expect(byOurs.get('blk_1.mlp.fc2.b')?.torch).toBe('blocks.0.fc2.bias');
    expect(byOurs.get('final.linear.w')).toMatchObject({ torch: 'final.weight', shape: [16, 16] });
    const keys = [...fixture('twin-dit-small.safetensors').tensors.keys()].filter((k) => k !== 'pos').sort();
    expect([...byOurs.values()].map((m) => m.torch).sort()).toEqual(keys);
  });

  it.each([
    ['UNet', 'twin-unet-tiny', UNET],
    ['DiT', 'twin-dit-small', DIT],
  ] as const)('gives the twin %s features within 1e-4 on the committed fixture', (_name, base, config) => {
    const dir = tmpDir();
    const imported = importTorchCheckpoint(path.join(FIXTURES, `${base}.safetensors`), config, 'ddpm', dir);
    const feats = fixture(`${base}.features.safetensors`);
    const get = (k: string) => feats.tensors.get(k) ?? fail(`fixture lacks ${k}`);
    // Our schedule noises the committed inputs to the committed x_t (t = 100).
    const t = Number(feats.metadata.t);
    const xt = ddpmNoise(get('x0').data, new Array(get('x0').shape[0]).fill(t), get('noise').data);
    let worst = 0;
    for (let i = 0; i < xt.length; i++) worst = Math.max(worst, Math.abs(xt[i] - get('xt').data[i]));
    expect(worst).toBeLessThan(1e-5);
    // The probe path's loader reads the imported checkpoint's EMA weights.
    const { unet, manifest } = loadForInference(imported.checkpoint.path);
    expect(manifest.imported).toEqual({ format: 'safetensors', source: path.join(FIXTURES, `${base}.safetensors`), sha256: imported.sourceSha256 });
    const taps = [...feats.tensors.keys()].filter((k) => k.startsWith('tap.')).map((k) => k.slice(4));
    expect(taps.length).toBeGreaterThan(1);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const r = unet.forward(nhwc(get('xt')), tf.tensor1d(get('t_in').data), { training: false, taps });
      for (const k of taps) {
        const want = nhwc(get(`tap.${k}`));
        expect(r.taps[k].shape).toEqual(want.shape);
        const diff = maxAbsDiff(r.taps[k], want);
        // Not a vacuous match: the features are of unit scale.
        expect(maxAbsDiff(want, tf.zerosLike(want))).toBeGreaterThan(0.1);
        expect({ tap: k, diff: diff < 1e-4 ? 'ok' : diff }).toEqual({ tap: k, diff: 'ok' });
      }
    });
    expect(tf.memory().numTensors).toBe(before);
    unet.dispose();
  });

  it('exports our parameters under the twin names and reads them back unchanged', () => {
    for (const config of [UNET, DIT]) {
      const net = createBackbone(config, 7);
      const values = new Map([...net.params.entries()].map(([k, v]) => [k, v.dataSync() as Float32Array]));
      const file = readSafetensors(writeSafetensors(toTorchTwinTensors(config, values)));
      const { params, flat } = mapTorchTwinWeights(file, config);
      for (const p of params) expect(Array.from(flat.subarray(p.offset, p.offset + p.size))).toEqual(Array.from(values.get(p.name) ?? []));
      net.dispose();
    }
  });

  describe('a file that does not fit the architecture', () => {
    const source = () => fixture('twin-unet-tiny.safetensors');
    /** Writes `file` to a temp path and imports it, expecting the error; asserts nothing was written. */
    function expectRefused(file: SafetensorsFile, config: ModelConfig, message: RegExp): void {
      const dir = tmpDir();
      const src = path.join(dir, 'bad.safetensors');
      fs.writeFileSync(src, writeSafetensors(file.tensors));
      const out = path.join(dir, 'ckpt');
      expect(() => importTorchCheckpoint(src, config, 'ddpm', out)).toThrow(WeightMismatchError);
      expect(() => importTorchCheckpoint(src, config, 'ddpm', out)).toThrow(message);
      expect(fs.existsSync(out)).toBe(false);
    }

    it('names the first tensor of the wrong shape, with the expected and found shapes', () => {
      const file = source();
      // Two wrong tensors: the first in our order (in_1 before mid_1) is the one named.
      file.tensors.set('blocks.mid_1.attn.qkv.weight', { dtype: 'F32', shape: [16, 16], data: new Float32Array(256) });
      file.tensors.set('blocks.in_1.conv1.weight', { dtype: 'F32', shape: [8, 8, 1, 3], data: new Float32Array(192) });
      expectRefused(file, UNET, /^tensor "blocks\.in_1\.conv1\.weight" \(our in_1\.conv1\.w\): expected shape \[8, 8, 3, 3\], found \[8, 8, 1, 3\]$/);
    });

    it('names the first missing tensor', () => {
      const file = source();
      file.tensors.delete('head.bias');
      file.tensors.delete('temb2.bias');
      expectRefused(file, UNET, /^missing tensor "temb2\.bias" \(our temb\.dense2\.b\): the unet expects shape \[32\]$/);
    });

    it('names the first unexpected tensor', () => {
      const file = source();
      file.tensors.set('blocks.in_9.conv1.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
      expectRefused(file, UNET, /^unexpected tensor "blocks\.in_9\.conv1\.weight"/);
    });

    it('refuses a UNet file as a DiT and a larger preset', () => {
      expectRefused(source(), DIT, /^missing tensor "patchify\.weight"/);
      expectRefused(source(), { ...resolveUNet('small'), imageSize: 32, imageChannels: 1 }, /^tensor "temb1\.weight" \(our temb\.dense1\.w\): expected shape \[64, 16\], found \[32, 8\]$/);
    });

    it('refuses a file whose sha256 is not the one expected, before reading it', () => {
      const dir = tmpDir();
      expect(() => importTorchCheckpoint(path.join(FIXTURES, 'twin-unet-tiny.safetensors'), UNET, 'ddpm', dir, 'ab'.repeat(32))).toThrow(/sha256 [0-9a-f]{64}, expected abab/);
      expect(fs.readdirSync(dir)).toEqual([]);
    });
  });

  it('writes a checkpoint that verifies, with the weights as both training and EMA weights', () => {
    const dir = tmpDir();
    const r = importTorchCheckpoint(path.join(FIXTURES, 'twin-unet-tiny.safetensors'), UNET, 'edm', dir);
    const found = verifyCheckpoint(r.checkpoint.path);
    expect(found.manifest).toMatchObject({ step: 0, method: 'edm', config: UNET });
    expect(found.manifest.files['weights.bin']).toBe(found.manifest.files['ema.bin']);
    expect(r.sourceSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.parameterCount).toBe(41609);
  });
});

function fail(message: string): never {
  throw new Error(message);
}
