import { NO_VULKAN, dawnDeviceSlug, parseDawnAdapterList, parseDeviceSelectList, planAdapter, type ListedAdapter } from './gpu-adapters';

/** The adapter choice on hosts CI does not have (several GPUs, identical GPUs), from the lists Dawn and Mesa print. */
const h200 = (index: number): ListedAdapter => ({ index, name: 'NVIDIA H200', api: 'vulkan', fallback: false });
const lavapipe = (index: number): ListedAdapter => ({ index, name: 'llvmpipe (LLVM 15.0.6, 256 bits)', api: 'vulkan', fallback: true });

describe('choosing a GPU adapter', () => {
  it('reads the lists Dawn and the Mesa device-select layer print', () => {
    const dawn = "no adapter with backend 'vulkan' and name 'x' found\nAvailable adapters:\n * backend: 'vulkan', name: 'NVIDIA H200'\n * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'";
    expect(parseDawnAdapterList(dawn)).toEqual([{ api: 'vulkan', name: 'NVIDIA H200' }, { api: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)' }]);
    expect(dawnDeviceSlug('llvmpipe (LLVM 15.0.6, 256 bits)')).toBe('llvmpipe-llvm-15-0-6-256-bits-');
    const mesa = 'selectable devices:\n  GPU 0: 10de:2335 "NVIDIA H200" discrete GPU 0000:3b:00.0\n  GPU 1: 10005:0 "llvmpipe (LLVM 15.0.6, 256 bits)" CPU\n';
    expect(parseDeviceSelectList(mesa)).toEqual([
      { name: 'NVIDIA H200', type: 'discrete GPU', tag: 'pci-0000_3b_00_0' },
      { name: 'llvmpipe (LLVM 15.0.6, 256 bits)', type: 'CPU' },
    ]);
    expect(parseDeviceSelectList('')).toBeUndefined();
  });

  it('auto: the one hardware adapter; never a software one unless webgpu was asked for', () => {
    expect(planAdapter({ kind: 'auto' }, [h200(0), lavapipe(1)], false)).toEqual({ index: 0, nameFilter: 'NVIDIA H200' });
    expect(planAdapter({ kind: 'auto' }, [lavapipe(0)], false)).toEqual({ skip: expect.stringMatching(/no hardware adapter \(only software/) });
    expect(planAdapter({ kind: 'auto' }, [lavapipe(0)], true)).toEqual({ index: 0, nameFilter: lavapipe(0).name });
    expect(planAdapter({ kind: 'auto' }, [], true)).toEqual({ skip: NO_VULKAN });
    expect(() => planAdapter({ kind: 'index', index: 0 }, [], true)).toThrow(/there is no adapter 0\. Dawn offers:\n {2}\(none: no Vulkan adapter \(a GPU needs libvulkan1/);
  });

  it('auto with several GPUs is an error: workers must not share the first one by default', () => {
    expect(() => planAdapter({ kind: 'auto' }, [h200(0), h200(1)], false)).toThrow(/2 GPUs are visible and DDAE_GPU is auto/);
  });

  it('an index, a name, a PCI address', () => {
    const mixed: ListedAdapter[] = [{ index: 0, name: 'NVIDIA RTX 4090', api: 'vulkan', fallback: false }, h200(1), lavapipe(2)];
    expect(planAdapter({ kind: 'index', index: 1 }, mixed, false)).toEqual({ index: 1, nameFilter: 'NVIDIA H200' });
    expect(planAdapter({ kind: 'name', name: '4090' }, mixed, false)).toEqual({ index: 0, nameFilter: 'NVIDIA RTX 4090' });
    expect(() => planAdapter({ kind: 'index', index: 3 }, mixed, false)).toThrow(/DDAE_GPU=3: there is no adapter 3\. Dawn offers:\n {2}0: "NVIDIA RTX 4090" \(vulkan\)\n {2}1: "NVIDIA H200" \(vulkan\)\n {2}2: "llvmpipe.*software adapter/);
    expect(() => planAdapter({ kind: 'index', index: 2 }, mixed, false)).toThrow(/a software adapter: a worker never computes on one unless DDAE_BACKEND=webgpu/);
    expect(() => planAdapter({ kind: 'name', name: 'NVIDIA' }, mixed, false)).toThrow(/matches 2 adapters \(0, 1\)/);
    expect(planAdapter({ kind: 'pci', tag: 'pci-0000_3b_00_0' }, [h200(0)], false)).toEqual({ index: 0, nameFilter: 'NVIDIA H200' });
    expect(() => planAdapter({ kind: 'pci', tag: 'pci-0000_3b_00_0' }, [h200(0), h200(1)], false)).toThrow(/still lists 2 adapters/);
  });

  it('identical GPUs cannot be told apart by name: the second one needs its PCI address', () => {
    expect(planAdapter({ kind: 'index', index: 0 }, [h200(0), h200(1)], false)).toEqual({ index: 0, nameFilter: 'NVIDIA H200' });
    expect(() => planAdapter({ kind: 'index', index: 1 }, [h200(0), h200(1)], false)).toThrow(/Dawn would take adapter 0 "NVIDIA H200" first.*DDAE_GPU=pci-DDDD_BB_DD_F/);
    // A name contained in an earlier adapter's name is shadowed the same way.
    expect(() => planAdapter({ kind: 'index', index: 1 }, [{ ...h200(0), name: 'NVIDIA H200 NVL' }, h200(1)], false)).toThrow(/Dawn would take adapter 0/);
  });
});
