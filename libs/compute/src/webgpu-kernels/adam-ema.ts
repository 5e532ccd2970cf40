import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { AdamEmaAttrs } from '@ddae/diffusion';
import { dispatchMultiOutput, elementGrid, flatProgram, MULTI_THREADS, storageBuffersPerShader, type ProgramBase } from './program';

/**
 * DdaeAdamEmaScaled for webgpu (libs/diffusion fused.ts, GPU_FUSED_KERNELS.adamEmaScaled): Adam +
 * EMA with the clipping scale as a tensor. ONE dispatch per parameter writing all four outputs
 * where the device binds enough storage buffers (10 with an EMA: 6 inputs, 4 outputs; 8 without),
 * else one tfjs program per output (3-4 per parameter; about 18 composed of tf ops).
 */

/** The single-dispatch step: every output from one thread per element, the arithmetic of adamProgram below. */
function adamMultiCode(withEma: boolean): string {
  const inputs = ['param', 'grad', 'moment1', 'moment2', 'gradScale', ...(withEma ? ['average'] : [])];
  const outputs = ['paramOut', 'moment1Out', 'moment2Out', ...(withEma ? ['averageOut'] : [])];
  return `
struct Constants { lr : f32, b1 : f32, oneMinusB1 : f32, b2 : f32, oneMinusB2 : f32, bc1 : f32, bc2 : f32, eps : f32, decay : f32, oneMinusDecay : f32, pad0 : f32, pad1 : f32 }
@group(0) @binding(0) var<uniform> uniforms : Constants;
${inputs.map((n, i) => `@group(0) @binding(${i + 1}) var<storage, read> ${n} : array<f32>;`).join('\n')}
${outputs.map((n, i) => `@group(0) @binding(${i + 1 + inputs.length}) var<storage, read_write> ${n} : array<f32>;`).join('\n')}
@compute @workgroup_size(${MULTI_THREADS}, 1, 1)
fn main(@builtin(global_invocation_id) gid : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>) {
  let index = gid.x + gid.y * nwg.x * ${MULTI_THREADS}u;
  if (index >= arrayLength(&paramOut)) { return; }
  let g = grad[index] * gradScale[0];
  let m1 = moment1[index] * uniforms.b1 + g * uniforms.oneMinusB1;
  let m2 = moment2[index] * uniforms.b2 + (g * g) * uniforms.oneMinusB2;
  let p1 = param[index] - ((m1 / uniforms.bc1) / (sqrt(m2 / uniforms.bc2) + uniforms.eps)) * uniforms.lr;
  paramOut[index] = p1;
  moment1Out[index] = m1;
  moment2Out[index] = m2;
  ${withEma ? 'averageOut[index] = average[index] * uniforms.decay + p1 * uniforms.oneMinusDecay;' : ''}
}`;
}

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
      const constants = [a.lr, a.b1, 1 - a.b1, a.b2, 1 - a.b2, a.bc1, a.bc2, a.eps, a.decay, 1 - a.decay];
      const inputsInOrder = [p, g, m, v, scale, ...(ema ? [ema] : [])];
      if (inputsInOrder.length + (ema ? 4 : 3) <= storageBuffersPerShader(backend)) {
        const size = p.shape.reduce((x, d) => x * d, 1);
        const outputShapes = Array.from({ length: ema ? 4 : 3 }, () => p.shape);
        return dispatchMultiOutput(backend, `ddaeAdamMulti_${ema !== undefined}`, adamMultiCode(ema !== undefined), inputsInOrder, outputShapes, new Float32Array([...constants, 0, 0]).buffer, elementGrid(backend, size));
      }
      // One uniform entry per field (an entry is a scalar or a short vector).
      const uniforms = constants.map((x) => ({ type: 'float32', data: [x] }));
      const byName: Record<string, tf.TensorInfo> = { param: p, grad: g, moment1: m, moment2: v, gradScale: scale, ...(ema ? { average: ema } : {}) };
      const outputs: AdamOutput[] = ema ? ['param', 'moment1', 'moment2', 'average'] : ['param', 'moment1', 'moment2'];
      return outputs.map((o) => {
        const program = adamProgram(p.shape, o);
        return backend.runWebGPUProgram(program as WebGPUProgram, program.variableNames.map((n) => byName[n]), 'float32', uniforms);
      });
    },
  };
