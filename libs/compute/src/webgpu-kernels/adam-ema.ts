import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { AdamEmaAttrs } from '@ddae/diffusion';
import { flatProgram, type ProgramBase } from './program';

/**
 * DdaeAdamEmaScaled for webgpu (libs/diffusion fused.ts, GPU_FUSED_KERNELS.adamEmaScaled): Adam +
 * EMA with the clipping scale as a tensor, one dispatch per output (3-4 per parameter instead of
 * about 18 composed ones).
 */

type AdamOutput = 'param' | 'moment1' | 'moment2' | 'average';

/**
 * One output of DdaeAdamEmaScaled over a parameter of n elements: each of the (up to) four outputs
 * is one dispatch that recomputes the few products it needs, in the same order as the composed tf
 * ops of libs/diffusion's optimizer (so the results match them to rounding).
 */
function adamProgram(shape: number[], output: AdamOutput): ProgramBase {
  // Each program binds exactly the inputs it reads (an unread binding is dropped from the layout).
  const inputs: Record<AdamOutput, string[]> = {
    moment1: ['grad', 'moment1', 'gradScale'],
    moment2: ['grad', 'moment2', 'gradScale'],
    param: ['param', 'grad', 'moment1', 'moment2', 'gradScale'],
    average: ['param', 'grad', 'moment1', 'moment2', 'gradScale', 'average'],
  };
  const lines = ['let g = grad[index] * gradScale[0];'];
  if (output !== 'moment2') lines.push('let m1 = moment1[index] * uniforms.b1 + g * uniforms.oneMinusB1;');
  if (output !== 'moment1') lines.push('let m2 = moment2[index] * uniforms.b2 + (g * g) * uniforms.oneMinusB2;');
  if (output === 'param' || output === 'average') lines.push('let p1 = param[index] - ((m1 / uniforms.bc1) / (sqrt(m2 / uniforms.bc2) + uniforms.eps)) * uniforms.lr;');
  const result: Record<AdamOutput, string> = { moment1: 'm1', moment2: 'm2', param: 'p1', average: 'average[index] * uniforms.decay + p1 * uniforms.oneMinusDecay' };
  lines.push(`setOutputAtIndex(index, ${result[output]});`);
  return flatProgram(
    shape,
    `ddaeAdam_${output}`,
    inputs[output],
    'lr : f32, b1 : f32, oneMinusB1 : f32, b2 : f32, oneMinusB2 : f32, bc1 : f32, bc2 : f32, eps : f32, decay : f32, oneMinusDecay : f32,',
    lines.join('\n          '),
  );
}

/** Adam's constants and this step's learning rate, bias corrections and EMA decay (the clipping scale is an input). */
type AdamAttrs = Omit<AdamEmaAttrs, 'gradScale'>;

export const adamEmaScaledConfig: tf.KernelConfig = {
    kernelName: 'DdaeAdamEmaScaled',
    backendName: 'webgpu',
    kernelFunc: function ddaeAdamEmaScaled(args) {
      const backend = args.backend as unknown as WebGPUBackend;
      const { p, g, m, v, scale, ema } = args.inputs as Record<string, tf.TensorInfo | undefined>;
      if (!p || !g || !m || !v || !scale) throw new Error('DdaeAdamEmaScaled needs inputs p, g, m, v and scale');
      for (const t of [g, m, v, ...(ema ? [ema] : [])]) {
        if (t.shape.join() !== p.shape.join()) throw new Error(`DdaeAdamEmaScaled: shape [${t.shape}] differs from the parameter's [${p.shape}]`);
      }
      const a = args.attrs as unknown as AdamAttrs;
      // One uniform entry per field (an entry is a scalar or a short vector).
      const uniforms = [a.lr, a.b1, 1 - a.b1, a.b2, 1 - a.b2, a.bc1, a.bc2, a.eps, a.decay, 1 - a.decay].map((x) => ({ type: 'float32', data: [x] }));
      const byName: Record<string, tf.TensorInfo> = { param: p, grad: g, moment1: m, moment2: v, gradScale: scale, ...(ema ? { average: ema } : {}) };
      const outputs: AdamOutput[] = ema ? ['param', 'moment1', 'moment2', 'average'] : ['param', 'moment1', 'moment2'];
      return outputs.map((o) => {
        const program = adamProgram(p.shape, o);
        return backend.runWebGPUProgram(program as WebGPUProgram, program.variableNames.map((n) => byName[n]), 'float32', uniforms);
      });
    },
  };
