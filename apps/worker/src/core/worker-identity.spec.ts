import type { GpuAdapter } from '@ddae/contracts';
import { WorkerIdentity } from './worker-identity';

const gpu: GpuAdapter = {
  index: 2,
  name: 'NVIDIA H200',
  api: 'vulkan',
  vendor: 'nvidia',
  architecture: 'hopper',
  description: 'NVIDIA 580.65',
  fallback: false,
  limits: { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31, maxStorageBuffersPerShaderStage: 8, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 1024 },
};

describe('WorkerIdentity', () => {
  it('reports the webgpu adapter as its device and pins every job to it', () => {
    const w = new WorkerIdentity({ id: 'w1', gpu: 'auto' });
    expect(w.device).toBe('cpu');
    expect(w.childEnv()).toEqual({ CUDA_VISIBLE_DEVICES: undefined, DDAE_GPU: 'auto' });
    w.chose({ backend: 'webgpu', detail: 'tfjs-backend-webgpu on Dawn', gpu });
    expect(w.backend).toBe('webgpu');
    expect(w.device).toBe('GPU 2 "NVIDIA H200" (nvidia hopper, vulkan; NVIDIA 580.65; max buffer 4.0 GiB, max binding 2048 MiB, 8 storage buffers/shader)');
    expect(w.childEnv()).toEqual({ CUDA_VISIBLE_DEVICES: undefined, DDAE_GPU: '2' });
    w.chose({ backend: 'webgpu', detail: '', gpu: { ...gpu, index: 0, pci: 'pci-0000_3b_00_0' } });
    expect(w.childEnv().DDAE_GPU).toBe('pci-0000_3b_00_0');
  });

  it('keeps DEVICE when set, and the CUDA label without a GPU adapter', () => {
    const named = new WorkerIdentity({ device: 'rack4-gpu2' });
    named.chose({ backend: 'webgpu', detail: '', gpu });
    expect(named.device).toBe('rack4-gpu2');
    const cuda = new WorkerIdentity({ cudaVisibleDevices: '1' });
    cuda.chose({ backend: 'native', detail: '' });
    expect(cuda.device).toBe('gpu1');
  });

  it('stores with each result the adapter the result names, without the limits; else its own device', () => {
    const w = new WorkerIdentity({ id: 'w1', gpu: 'auto' });
    expect(w.resultDevice()).toBe('cpu');
    w.chose({ backend: 'webgpu', detail: '', gpu });
    expect(w.resultDevice()).toBe('GPU 2 "NVIDIA H200" (nvidia hopper, vulkan; NVIDIA 580.65)');
    // The child reports the adapter it computed on: that one is stored.
    const lavapipe = { ...gpu, index: 0, name: 'llvmpipe (LLVM 19.1.7, 256 bits)', vendor: 'mesa', architecture: '', description: 'Mesa 25.0.7', fallback: true };
    expect(w.resultDevice({ backend: 'webgpu', detail: '', gpu: lavapipe })).toBe('GPU 0 "llvmpipe (LLVM 19.1.7, 256 bits)" (software adapter, mesa, vulkan; Mesa 25.0.7)');
    expect(new WorkerIdentity({ device: 'rack4-gpu2' }).resultDevice({ backend: 'webgpu', detail: '', gpu })).toBe('rack4-gpu2');
    const cuda = new WorkerIdentity({ cudaVisibleDevices: '1' });
    cuda.chose({ backend: 'tensorflow-gpu', detail: '' });
    expect(cuda.resultDevice({ backend: 'tensorflow-gpu', detail: '' })).toBe('gpu1');
  });

  it('reports the GPU memory tfjs held at the end of its last GPU job (the heartbeat carries it)', () => {
    const w = new WorkerIdentity({ id: 'w1' });
    expect(w.gpuMemory).toBeUndefined();
    w.sawResult({ backend: 'webgpu', detail: '', gpu, memory: { numTensors: 3, numBytes: 1024, gpuBytesUsed: 2 ** 20, gpuBytesAllocated: 3 * 2 ** 20 } });
    expect(w.gpuMemory).toEqual({ allocatedBytes: 3 * 2 ** 20, usedBytes: 2 ** 20 });
    // A figure the backend did not report is null, not made up.
    w.sawResult({ backend: 'webgpu', detail: '', gpu, memory: { numTensors: 0, numBytes: 0, gpuBytesAllocated: 5 } });
    expect(w.gpuMemory).toEqual({ allocatedBytes: 5, usedBytes: null });
    // A result off a GPU (or without figures) leaves the last GPU figures.
    w.sawResult({ backend: 'native', detail: '', memory: { numTensors: 1, numBytes: 4 } });
    w.sawResult(undefined);
    expect(w.gpuMemory).toEqual({ allocatedBytes: 5, usedBytes: null });
  });

  it('reports the data sets it reads now, and remembers the directory of every one it has read (one that loses files later broke)', () => {
    const saved = process.env['DDAE_DATA_DIR'];
    process.env['DDAE_DATA_DIR'] = '/data';
    try {
      const w = new WorkerIdentity({ id: 'w1' });
      w.sawDatasets(['mnist']);
      w.sawDataset('fashion-mnist', true);
      expect(w.datasets).toEqual(['fashion-mnist', 'mnist']);
      w.sawDatasets(['cifar10']);
      w.sawDataset('cifar10', false);
      expect(w.datasets).toEqual([]);
      expect(w.datasetDirs).toEqual(['/data/mnist', '/data/fashion-mnist', '/data/cifar10']);
    } finally {
      if (saved === undefined) delete process.env['DDAE_DATA_DIR'];
      else process.env['DDAE_DATA_DIR'] = saved;
    }
  });
});
