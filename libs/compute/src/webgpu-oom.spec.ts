import * as tf from '@tensorflow/tfjs';
import { DeviceLimitError } from '@ddae/diffusion';
import { releaseBackend, selectBackend } from './backend';
import { GpuDeviceError, GpuOutOfMemoryError, deviceErrorOf, webGpuFault } from './webgpu';

/**
 * Running out of GPU memory is a clear, non-retried error naming the GPU, what tfjs held and the
 * fix. A real out-of-memory is not provoked here (lavapipe's memory is the shared host's): Dawn's
 * own GPUOutOfMemoryError (its class constructs under Node) is dispatched as the real device's
 * `uncapturederror` event, the path a real one takes, on lavapipe.
 */
jest.setTimeout(300_000);

type DawnGlobals = {
  GPUOutOfMemoryError: new (message: string) => { message: string };
  GPUValidationError: new (message: string) => { message: string };
  GPUUncapturedErrorEvent: new (type: string, init: { error: unknown }) => Event;
};

describe('webgpu out of memory', () => {
  afterAll(async () => {
    await releaseBackend();
  });

  it('fails the next read with GpuOutOfMemoryError naming the GPU, the memory tfjs held and the smaller batch to use', async () => {
    expect((await selectBackend('webgpu', { gpu: { kind: 'name', name: 'llvmpipe' } })).backend).toBe('webgpu');
    // Some GPU memory in tfjs's pool: 1 MiB of tensors.
    const held = tf.fill([512, 512], 1);
    const fine = tf.sum(held);
    expect((await fine.data())[0]).toBe(512 * 512);
    const dawn = globalThis as unknown as DawnGlobals;
    const device = (tf.backend() as unknown as { device: EventTarget }).device;
    device.dispatchEvent(new dawn.GPUUncapturedErrorEvent('uncapturederror', { error: new dawn.GPUOutOfMemoryError('Out of memory allocating a 4 GiB buffer') }));
    const err = await fine.data().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuOutOfMemoryError);
    // A device limit (the CLI reports it as one), named apart for the worker, which does not retry it.
    expect(err).toBeInstanceOf(DeviceLimitError);
    expect(err).toHaveProperty('name', 'GpuOutOfMemoryError');
    const message = (err as Error).message;
    expect(message).toMatch(/^GPU 0 "llvmpipe[^"]*" ran out of memory \(GPUOutOfMemoryError: Out of memory allocating a 4 GiB buffer\)/);
    // The pool's figures (at least the 1 MiB tensor), the adapter's largest buffer, and the fix.
    const [, allocated, used] = /buffer pool held (\d+) MiB of GPU memory \((\d+) MiB in use by tensors\)/.exec(message) ?? [];
    expect(Number(used)).toBeGreaterThanOrEqual(1);
    expect(Number(allocated)).toBeGreaterThanOrEqual(Number(used));
    expect(message).toMatch(/buffers of at most \d+ MiB \(maxBufferSize\)/);
    expect(message).toMatch(/Use a smaller batch \(pretrain\.batchSize in the sweep spec, --batch of ddae pretrain/);
    expect(webGpuFault()).toBe(err);
    tf.dispose([held, fine]);
  });

  it('maps any other device error to GpuDeviceError (Dawn classes)', () => {
    const dawn = globalThis as unknown as DawnGlobals;
    const other = deviceErrorOf(new dawn.GPUValidationError('too many storage buffers') as never, 'GPU 0 "x"');
    expect(other).toBeInstanceOf(GpuDeviceError);
    expect(other.message).toMatch(/reported an error, so results computed since are wrong and the task fails: GPUValidationError: too many storage buffers$/);
    const oom = deviceErrorOf(new dawn.GPUOutOfMemoryError('oom') as never, 'GPU 3 "NVIDIA H200"');
    expect(oom).toBeInstanceOf(GpuOutOfMemoryError);
    // Figures tfjs did not report are said to be unknown, not made up.
    expect(oom.message).toMatch(/^GPU 3 "NVIDIA H200" ran out of memory \(GPUOutOfMemoryError: oom\), so the task fails: tfjs's buffer pool held unknown of GPU memory \(unknown in use by tensors\); WebGPU/);
  });
});
