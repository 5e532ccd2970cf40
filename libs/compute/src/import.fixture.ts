import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { PretrainTask } from '@ddae/contracts';
import { loadForInference, readSafetensors } from '@ddae/diffusion';
import { selectBackend } from './backend';
import { runPretrainTask } from './pretrain.task';

const FIXTURES = path.resolve(__dirname, '../../diffusion/fixtures');

/**
 * A model pretrained elsewhere on one backend: the pretraining task of a run whose spec names a
 * safetensors file imports it (nothing trained), and its features there are the PyTorch twin's
 * within 1e-4. import.spec.ts runs it on wasm, import.native.spec.ts on the native kernels.
 */
export function describeImport(backend: 'wasm' | 'native'): void {
  describe(`importing a model pretrained elsewhere on ${backend}`, () => {
    let root: string;
    beforeAll(async () => {
      await selectBackend(backend);
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-import-task-'));
    });
    afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

    const task = (name: string, net: Pick<PretrainTask, 'unet' | 'dit'>, importFrom: PretrainTask['importFrom']): PretrainTask => ({
      kind: 'pretrain',
      runId: name,
      method: 'ddpm',
      ...net,
      // Never read: an imported run loads no training images.
      dataset: { name: 'fashion-mnist', dir: path.join(root, 'no-data-here') },
      steps: 0,
      batchSize: 64,
      learningRate: 2e-4,
      warmupSteps: 0,
      gradClip: 1,
      emaDecayCap: 0.9999,
      checkpointEvery: 1,
      seed: 0,
      checkpointDir: path.join(root, name),
      importFrom,
    });

    it.each([
      ['twin-unet-tiny', { unet: { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4 } }, 41_609],
      ['twin-dit-small', { dit: { depth: 2, width: 16, heads: 2, patch: 4, mlpRatio: 4 } }, 15_168],
    ] as const)('imports %s as step 0 and computes the twin features within 1e-4', async (name, net, parameters) => {
      const file = path.join(FIXTURES, `${name}.safetensors`);
      const r = await runPretrainTask(task(name, net as Pick<PretrainTask, 'unet' | 'dit'>, { path: file }));
      expect(r).toMatchObject({ kind: 'pretrain', steps: 0, parameters, finalCheckpoint: { step: 0, path: path.join(root, name, 'step-00000000') }, source: { path: file } });
      expect(r.source?.sha256).toMatch(/^[0-9a-f]{64}$/);
      const feats = readSafetensors(fs.readFileSync(path.join(FIXTURES, `${name}.features.safetensors`))).tensors;
      const get = (k: string) => feats.get(k) ?? { shape: [], data: new Float32Array(0) };
      const nhwc = (k: string) => tf.transpose(tf.tensor4d(get(k).data, get(k).shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D;
      const taps = [...feats.keys()].filter((k) => k.startsWith('tap.')).map((k) => k.slice(4));
      const { unet } = loadForInference(r.finalCheckpoint.path);
      const diffs = tf.tidy(() => {
        const out = unet.forward(nhwc('xt'), tf.tensor1d(get('t_in').data), { training: false, taps });
        return taps.map((k) => tf.max(tf.abs(tf.sub(out.taps[k], nhwc(`tap.${k}`)))));
      });
      const worst = await Promise.all(diffs.map(async (d) => (await d.data())[0]));
      tf.dispose(diffs);
      unet.dispose();
      expect(worst.length).toBeGreaterThan(1);
      for (const w of worst) expect(w).toBeLessThan(1e-4);
    });

    it('fails with ImportError (not retried) on a wrong sha256 or another architecture, writing nothing', async () => {
      const file = path.join(FIXTURES, 'twin-unet-tiny.safetensors');
      const unet = { unet: { baseChannels: 16, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4 } };
      await expect(runPretrainTask(task('other-arch', unet, { path: file }))).rejects.toMatchObject({
        name: 'ImportError',
        message: expect.stringContaining('tensor "temb1.weight" (our temb.dense1.w): expected shape [64, 16], found [32, 8]'),
      });
      const tiny = { unet: { ...unet.unet, baseChannels: 8 } };
      await expect(runPretrainTask(task('wrong-hash', tiny, { path: file, sha256: '0'.repeat(64) }))).rejects.toMatchObject({ name: 'ImportError', message: expect.stringContaining(`expected ${'0'.repeat(64)}`) });
      // A missing file is the spec's fault (ImportError), never a system error the worker would
      // read as its own unusable ARTIFACT_DIR (environment-fault.ts: ENOENT there takes it offline).
      const missing = path.join(root, 'no-such-model.safetensors');
      await expect(runPretrainTask(task('missing', tiny, { path: missing }))).rejects.toMatchObject({ name: 'ImportError', message: expect.stringContaining(`${missing}: no such file`) });
      expect(fs.existsSync(path.join(root, 'other-arch'))).toBe(false);
      expect(fs.existsSync(path.join(root, 'wrong-hash'))).toBe(false);
      expect(fs.existsSync(path.join(root, 'missing'))).toBe(false);
    });
  });
}
