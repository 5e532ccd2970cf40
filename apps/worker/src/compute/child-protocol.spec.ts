import { GpuDeviceError, GpuDeviceLostError, GpuOutOfMemoryError } from '@ddae/compute';
import { DeviceLimitError } from '@ddae/diffusion';
import { NON_RETRYABLE_ERRORS, serializeError } from './child-protocol';

describe('which errors of a compute child the worker retries', () => {
  it('does not retry what the same model and batch would meet again: a device limit, a device error, running out of GPU memory', () => {
    const retried = (error: Error) => !NON_RETRYABLE_ERRORS.has(serializeError(error, 'task').name);
    expect(retried(new GpuOutOfMemoryError('GPU 0 "NVIDIA H200" ran out of memory'))).toBe(false);
    expect(retried(new DeviceLimitError('one image needs a 3 GiB tensor'))).toBe(false);
    expect(retried(new GpuDeviceError('the GPU device reported an error'))).toBe(false);
    // A lost device (driver reset) may not recur: a fresh child gets a fresh device.
    expect(retried(new GpuDeviceLostError('the GPU device was lost'))).toBe(true);
  });
});
