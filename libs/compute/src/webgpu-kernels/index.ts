import * as tf from '@tensorflow/tfjs';
import { adamEmaInPlaceConfig, adamEmaScaledConfig } from './adam-ema';
import { clipScaleConfig } from './clip-scale';
import { convAddConfig } from './conv-add';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter';
import { groupNormConfig, groupNormGradConfig } from './group-norm';

export { planClipScale } from './clip-scale';
export { planFilterGradChunks } from './conv2d-backprop-filter';
export { adamInPlaceSlots } from './adam-ema';
export type { ReadTracking } from './program';

/**
 * Kernels of our own for the webgpu backend, one family per file as the native kernels are: where
 * tfjs-backend-webgpu's own cost the most (a convolution's weight gradient), and the fused kernels
 * libs/diffusion asks for by name (fused.ts) as the native backend has them, so that a training
 * step is fewer dispatches: the host's cost per dispatch is most of a step on a GPU (docs/results.md).
 */

let registered = false;

/** Replaces tfjs-webgpu's Conv2DBackpropFilter with ours and registers our fused kernels (once per process, after the backend is set up). */
export function registerWebGpuKernels(): void {
  if (registered) return;
  const original = tf.getKernel('Conv2DBackpropFilter', 'webgpu');
  if (!original) throw new Error('tfjs-backend-webgpu registered no Conv2DBackpropFilter: its version changed? (STACK.md pins 4.22)');
  tf.unregisterKernel('Conv2DBackpropFilter', 'webgpu');
  for (const config of [conv2dBackpropFilterConfig(original), adamEmaScaledConfig, adamEmaInPlaceConfig, clipScaleConfig, convAddConfig, groupNormConfig, groupNormGradConfig]) tf.registerKernel(config);
  registered = true;
}
