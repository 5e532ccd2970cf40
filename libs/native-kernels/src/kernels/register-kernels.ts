import type { KernelsAddon } from '../addon';
import { adamEmaKernels } from './adam-ema.kernels';
import { batchMatMulKernels } from './batch-mat-mul.kernels';
import { binaryKernels } from './binary.kernels';
import { conv2dGradKernels } from './conv2d-grad.kernels';
import { conv2dKernels } from './conv2d.kernels';
import { dataMovementKernels } from './data-movement.kernels';
import { groupNormKernels } from './group-norm.kernels';
import type { KernelFamily, NativeKernel } from './native-kernel';
import { reduceKernels } from './reduce.kernels';
import { softmaxKernels } from './softmax.kernels';

/** Every kernel family of the native backend; a new family is one file and one line here. */
export const KERNEL_FAMILIES: readonly KernelFamily[] = [
  conv2dKernels,
  conv2dGradKernels,
  batchMatMulKernels,
  binaryKernels,
  dataMovementKernels,
  reduceKernels,
  softmaxKernels,
  groupNormKernels,
  adamEmaKernels,
];

/** The native kernels by tf kernel name; a name claimed by two families is a programming error. */
export function nativeKernels(addon: KernelsAddon, families: readonly KernelFamily[] = KERNEL_FAMILIES): Map<string, NativeKernel> {
  const kernels = new Map<string, NativeKernel>();
  for (const family of families) {
    for (const [name, kernel] of Object.entries(family(addon))) {
      if (kernels.has(name)) throw new Error(`native kernels: ${name} is implemented by two kernel families`);
      kernels.set(name, kernel);
    }
  }
  return kernels;
}
