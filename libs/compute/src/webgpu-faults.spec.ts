import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng, pretrain } from '@ddae/diffusion';
import { releaseBackend, selectBackend } from './backend';
import { GpuSelectionError } from './gpu-adapters';
import { GpuDeviceError, webGpuFault, webGpuMessages } from './webgpu';

/**
 * A GPU fault never passes silently. WebGPU reports errors asynchronously and tfjs-webgpu does not
 * throw: one kernel binding more storage buffers than the adapter allows is dropped by the device,
 * and the computation goes on with wrong values. Our backend fails every read after such an error,
 * so a task fails at its next read (a loss, a checkpoint, features). Provoked here for real, on
 * lavapipe: an addN of 20 inputs needs 21 storage buffers, and lavapipe allows 16.
 */
jest.setTimeout(300_000);

describe('webgpu device faults', () => {
  let root: string;

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-webgpu-faults-'));
  });

  afterAll(async () => {
    await releaseBackend();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('names what exists when DDAE_GPU names an adapter that is not there', async () => {
    const err = await selectBackend('webgpu', { gpu: { kind: 'index', index: 1 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuSelectionError);
    expect((err as Error).message).toMatch(/DDAE_GPU=1: there is no adapter 1\. Dawn offers:\n {2}0: "llvmpipe[^"]*" \(vulkan, software adapter\)/);
    const named = await selectBackend('webgpu', { gpu: { kind: 'name', name: 'H200' } }).catch((e: unknown) => e);
    expect((named as Error).message).toMatch(/DDAE_GPU=H200: no adapter's name contains it/);
    // A PCI address is checked against the list of Mesa's device-select layer (with the PCI address of each GPU).
    const pci = await selectBackend('webgpu', { gpu: { kind: 'pci', tag: 'pci-0000_3b_00_0' } }).catch((e: unknown) => e);
    expect((pci as Error).message).toMatch(/DDAE_GPU=pci-0000_3b_00_0: no GPU at that PCI address\. Vulkan sees:\n {2}\(no PCI address\) "llvmpipe[^"]*" CPU/);
  });

  it('fails the read after a dropped GPU command, and every read after it', async () => {
    expect((await selectBackend('webgpu', { gpu: { kind: 'name', name: 'llvmpipe' } })).backend).toBe('webgpu');
    const fine = tf.scalar(1);
    expect((await fine.data())[0]).toBe(1);
    const xs = Array.from({ length: 20 }, (_, i) => tf.fill([8, 8], i));
    const sum = tf.addN(xs);
    await expect(sum.data()).rejects.toThrow(GpuDeviceError);
    expect(webGpuFault()?.message).toMatch(/GPUValidationError: The number of storage buffers \(21\) in the Compute stage exceeds the maximum per-stage limit \(16\)/);
    expect(webGpuMessages().length).toBeGreaterThan(0);
    await expect(fine.data()).rejects.toThrow(/the GPU device reported an error/);
    tf.dispose([fine, sum, ...xs]);
  });

  it('fails a training run on a faulted device with its error, leaving no tensor behind', async () => {
    const before = tf.memory().numTensors;
    const images = new Rng(1).normal(16 * 64).map((v) => Math.tanh(v));
    const task = {
      kind: 'pretrain' as const,
      runId: 'faulted',
      method: 'ddpm' as const,
      unet: { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0, groups: 4 },
      dataset: { name: 'fashion-mnist' as const },
      steps: 2,
      batchSize: 4,
      learningRate: 1e-3,
      warmupSteps: 0,
      gradClip: 1,
      emaDecayCap: 0.9999,
      checkpointEvery: 2,
      seed: 0,
      checkpointDir: path.join(root, 'faulted'),
    };
    const err = await pretrain(task, images, 16, {}, { imageSize: 8, imageChannels: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuDeviceError);
    expect(err).toHaveProperty('name', 'GpuDeviceError');
    expect(fs.existsSync(task.checkpointDir)).toBe(false);
    expect(tf.memory().numTensors).toBe(before);
  });
});
