import { FUSED_KERNELS } from '@ddae/diffusion';
import { loadAddon } from '../addon';
import type { KernelFamily } from './native-kernel';
import { KERNEL_FAMILIES, nativeKernels } from './register-kernels';

describe('nativeKernels', () => {
  const addon = loadAddon();

  it('registers every kernel the backend overrides, each from one family', () => {
    const names = [...nativeKernels(addon).keys()].sort();
    expect(names).toEqual(
      [
        'Add',
        'BatchMatMul',
        'Concat',
        'Conv2D',
        'Conv2DBackpropFilter',
        'Conv2DBackpropInput',
        'FusedConv2D',
        'Mean',
        'Multiply',
        'RealDiv',
        'Softmax',
        'SplitV',
        'Sub',
        'Sum',
        'Transpose',
        ...Object.values(FUSED_KERNELS),
      ].sort(),
    );
  });

  it('refuses a kernel name claimed by two families', () => {
    const twice: KernelFamily = () => ({ Softmax: () => undefined });
    expect(() => nativeKernels(addon, [...KERNEL_FAMILIES, twice])).toThrow(/Softmax is implemented by two kernel families/);
  });
});
