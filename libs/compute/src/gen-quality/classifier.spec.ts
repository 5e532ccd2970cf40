import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadDataset, toModelInput } from '@ddae/datasets';
import { selectBackend } from '../backend';
import { FID_CLASSIFIER_FILE, FID_CLASSIFIER_SHA256, FID_CLASSIFIER_SHAPES, FID_EXTRACTOR, FidClassifierError, classifierAccuracy, classifierFeatures, disposeParams, loadFidClassifier, sha256 } from './classifier';

jest.setTimeout(60_000);

describe('the committed FID classifier (ddae-fmnist-cnn-v1)', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('is a small committed file whose sha256 is the pinned one, with every tensor in shape', () => {
    const bytes = fs.readFileSync(FID_CLASSIFIER_FILE);
    expect(bytes.length).toBeLessThan(1_000_000);
    expect(sha256(bytes)).toBe(FID_CLASSIFIER_SHA256);
    const { params, metadata, sha256: hash } = loadFidClassifier();
    expect(hash).toBe(FID_CLASSIFIER_SHA256);
    expect([...params.keys()]).toEqual(FID_CLASSIFIER_SHAPES.map(([name]) => name));
    for (const [name, shape] of FID_CLASSIFIER_SHAPES) expect(params.get(name)?.shape).toEqual(shape);
    expect(metadata.id).toBe('ddae-fmnist-cnn-v1');
    expect(Number(metadata.testAccuracy)).toBeGreaterThan(0.84);
    expect(FID_EXTRACTOR).toBe('ddae-fmnist-cnn-v1 penultimate, 128-d');
    disposeParams(params);
  });

  it('refuses bytes that are not the pinned ones, naming both hashes', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-fid-'));
    try {
      const copy = path.join(dir, 'c.safetensors');
      const bytes = fs.readFileSync(FID_CLASSIFIER_FILE);
      bytes[bytes.length - 1] ^= 1;
      fs.writeFileSync(copy, bytes);
      expect(() => loadFidClassifier(copy)).toThrow(FidClassifierError);
      expect(() => loadFidClassifier(copy)).toThrow(new RegExp(`has sha256 ${sha256(bytes)}, expected ${FID_CLASSIFIER_SHA256}`));
      expect(() => loadFidClassifier(path.join(dir, 'absent.safetensors'))).toThrow(/is missing: it is committed with the repository/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('classifies Fashion-MNIST test images as trained, and reads padded 32x32 model inputs like 28x28 ones', async () => {
    const test = await loadDataset('fashion-mnist', 'test');
    const { params } = loadFidClassifier();
    const before = tf.memory().numTensors;
    // 300 test images: the forward pass here is the one the training script used.
    const indices = Array.from({ length: 300 }, (_, i) => i * 33);
    expect(await classifierAccuracy(params, test, indices, 100)).toBeGreaterThan(0.8);
    const idx = indices.slice(0, 5);
    const f28 = await classifierFeatures(params, toModelInput(test, idx, 28), 5, 28);
    const f32 = await classifierFeatures(params, toModelInput(test, idx, 32), 5, 32, { batch: 2 });
    expect(f28.length).toBe(5 * 128);
    expect(Math.max(...Array.from(f28, (v, i) => Math.abs(v - f32[i])))).toBeLessThan(1e-5);
    expect(f28.some((v) => v > 0)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    disposeParams(params);
  });
});
