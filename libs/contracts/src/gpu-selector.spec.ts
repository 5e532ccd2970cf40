import { formatGpuSelector, parseGpuSelector } from './gpu-selector';

describe('DDAE_GPU', () => {
  it('parses auto, an index, a PCI address and a name', () => {
    expect(parseGpuSelector(undefined)).toEqual({ kind: 'auto' });
    expect(parseGpuSelector(' auto ')).toEqual({ kind: 'auto' });
    expect(parseGpuSelector('3')).toEqual({ kind: 'index', index: 3 });
    expect(parseGpuSelector('pci-0000_3B_00_0')).toEqual({ kind: 'pci', tag: 'pci-0000_3b_00_0' });
    expect(parseGpuSelector('NVIDIA H200')).toEqual({ kind: 'name', name: 'NVIDIA H200' });
    for (const v of ['auto', '3', 'pci-0000_3b_00_0', 'llvmpipe']) expect(formatGpuSelector(parseGpuSelector(v))).toBe(v);
  });

  it('refuses what Dawn could not take, naming the accepted forms', () => {
    expect(() => parseGpuSelector('pci-0000:3b:00.0')).toThrow(/pci-DDDD_BB_DD_F/);
    expect(() => parseGpuSelector('a=b')).toThrow(/adapter index/);
    expect(() => parseGpuSelector('-1')).toThrow(/adapter index/);
  });
});
