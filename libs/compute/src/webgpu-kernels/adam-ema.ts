import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { AdamEmaAttrs } from '@ddae/diffusion';
import { dispatchInPlace, dispatchMultiOutput, elementGrid, exclusivelyOwned, flatProgram, MULTI_THREADS, sameTensor, storageBuffersPerShader, type ProgramBase } from './program';

/**
 * DdaeAdamEmaScaled for webgpu (libs/diffusion fused.ts, GPU_FUSED_KERNELS.adamEmaScaled): Adam +
 * EMA with the clipping scale as a tensor. ONE dispatch per parameter writing all four outputs
 * where the device binds enough storage buffers (10 with an EMA: 6 inputs, 4 outputs; 8 without),
 * else one tfjs program per output (3-4 per parameter; about 18 composed of tf ops).
 * DdaeAdamEmaInPlace (below; what the optimiser uses on webgpu): the same step over many
 * parameters, 3 per dispatch, writing into buffers that nothing else holds.
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

/** One parameter's tensors: its value, gradient, moments and (optional) EMA. */
interface AdamTensors {
  p: tf.TensorInfo;
  g: tf.TensorInfo;
  m: tf.TensorInfo;
  v: tf.TensorInfo;
  ema?: tf.TensorInfo | undefined;
}

function adamConstants(a: AdamAttrs): number[] {
  return [a.lr, a.b1, 1 - a.b1, a.b2, 1 - a.b2, a.bc1, a.bc2, a.eps, a.decay, 1 - a.decay];
}

function checkAdamShapes(kernel: string, { p, g, m, v, ema }: AdamTensors): void {
  for (const t of [g, m, v, ...(ema ? [ema] : [])]) {
    if (t.shape.join() !== p.shape.join()) throw new Error(`${kernel}: shape [${t.shape}] differs from the parameter's [${p.shape}]`);
  }
}

export const adamEmaScaledConfig: tf.KernelConfig = {
    kernelName: 'DdaeAdamEmaScaled',
    backendName: 'webgpu',
    kernelFunc: function ddaeAdamEmaScaled(args) {
      const backend = args.backend as unknown as WebGPUBackend;
      const { p, g, m, v, scale, ema } = args.inputs as Record<string, tf.TensorInfo | undefined>;
      if (!p || !g || !m || !v || !scale) throw new Error('DdaeAdamEmaScaled needs inputs p, g, m, v and scale');
      checkAdamShapes('DdaeAdamEmaScaled', { p, g, m, v, ema });
      return adamOutOfPlace(backend, { p, g, m, v, ema }, scale, args.attrs as unknown as AdamAttrs);
    },
  };

/** New tensors (p, m, v[, ema]) after one step of one parameter: one dispatch where the device binds its buffers, else one per output. */
function adamOutOfPlace(backend: WebGPUBackend, { p, g, m, v, ema }: AdamTensors, scale: tf.TensorInfo, a: AdamAttrs): tf.TensorInfo[] {
  const constants = adamConstants(a);
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
}


/** At most this many parameters per in-place dispatch, whatever the device binds (the shader has one branch per parameter). */
const MAX_IN_PLACE_SLOTS = 4;

/**
 * The in-place step of `count` parameters in one dispatch, the arithmetic of adamMultiCode: the
 * scale at binding 1, then per parameter its gradient (read) and its p, m, v[, ema] (read_write,
 * overwritten). Workgroup z picks the parameter; each thread reads and writes only its element.
 */
function adamInPlaceCode(count: number, withEma: boolean): string {
  const slot = (i: number) => `
  if (slot == ${i}u) {
    if (index >= uniforms.n${i}) { return; }
    let g = grad${i}[index] * gradScale[0];
    let m1 = moment1_${i}[index] * uniforms.b1 + g * uniforms.oneMinusB1;
    let m2 = moment2_${i}[index] * uniforms.b2 + (g * g) * uniforms.oneMinusB2;
    let p1 = param${i}[index] - ((m1 / uniforms.bc1) / (sqrt(m2 / uniforms.bc2) + uniforms.eps)) * uniforms.lr;
    ${withEma ? `average${i}[index] = average${i}[index] * uniforms.decay + p1 * uniforms.oneMinusDecay;` : ''}
    param${i}[index] = p1;
    moment1_${i}[index] = m1;
    moment2_${i}[index] = m2;
    return;
  }`;
  const perSlot = withEma ? 5 : 4;
  const bindings = Array.from({ length: count }, (_, i) => {
    const at = 2 + i * perSlot;
    return [
      `@group(0) @binding(${at}) var<storage, read> grad${i} : array<f32>;`,
      `@group(0) @binding(${at + 1}) var<storage, read_write> param${i} : array<f32>;`,
      `@group(0) @binding(${at + 2}) var<storage, read_write> moment1_${i} : array<f32>;`,
      `@group(0) @binding(${at + 3}) var<storage, read_write> moment2_${i} : array<f32>;`,
      ...(withEma ? [`@group(0) @binding(${at + 4}) var<storage, read_write> average${i} : array<f32>;`] : []),
    ].join('\n');
  });
  return `
struct Constants { lr : f32, b1 : f32, oneMinusB1 : f32, b2 : f32, oneMinusB2 : f32, bc1 : f32, bc2 : f32, eps : f32, decay : f32, oneMinusDecay : f32, pad0 : f32, pad1 : f32, n0 : u32, n1 : u32, n2 : u32, n3 : u32 }
@group(0) @binding(0) var<uniform> uniforms : Constants;
@group(0) @binding(1) var<storage, read> gradScale : array<f32>;
${bindings.join('\n')}
@compute @workgroup_size(${MULTI_THREADS}, 1, 1)
fn main(@builtin(global_invocation_id) gid : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>) {
  let index = gid.x + gid.y * nwg.x * ${MULTI_THREADS}u;
  let slot = gid.z;${Array.from({ length: count }, (_, i) => slot(i)).join('')}
}`;
}

/** How many parameters one in-place dispatch updates on a device binding `maxStorageBuffers`: each binds 4 (5 with an EMA) besides the shared scale. */
export function adamInPlaceSlots(maxStorageBuffers: number, withEma: boolean): number {
  return Math.max(0, Math.min(MAX_IN_PLACE_SLOTS, Math.floor((maxStorageBuffers - 1) / (withEma ? 5 : 4))));
}

/**
 * DdaeAdamEmaInPlace for webgpu (libs/diffusion fused.ts, GPU_FUSED_KERNELS.adamEmaInPlace): the
 * step of every parameter given (inputs scale, p0, g0, m0, v0[, e0], p1, ...), writing p, m, v and
 * the EMA into their own buffers where nothing else can see them (program.ts exclusivelyOwned:
 * refCount 1, no read in flight, not zero-copy), several parameters per dispatch (3 on a device
 * binding 16 storage buffers, with or without an EMA), instead of one dispatch each: binding a
 * parameter's new values as separate outputs takes 9 buffers of the 16. A parameter whose buffers
 * are not all exclusively owned (the first step: the EMA starts as the parameter's own buffer)
 * takes the out-of-place step (adamOutOfPlace). Outputs: p, m, v[, ema] of each parameter in
 * order, the same dataIds where written in place (as Identity returns its input), new ones
 * elsewhere: the caller assigns those that differ.
 */
export const adamEmaInPlaceConfig: tf.KernelConfig = {
  kernelName: 'DdaeAdamEmaInPlace',
  backendName: 'webgpu',
  kernelFunc: function ddaeAdamEmaInPlace(args) {
    const backend = args.backend as unknown as WebGPUBackend;
    const inputs = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const scale = inputs['scale'];
    if (!scale) throw new Error('DdaeAdamEmaInPlace needs the input scale');
    const count = Object.keys(inputs).filter((k) => /^p\d+$/.test(k)).length;
    const slots: AdamTensors[] = Array.from({ length: count }, (_, i) => {
      const [p, g, m, v, ema] = ['p', 'g', 'm', 'v', 'e'].map((k) => inputs[`${k}${i}`]);
      if (!p || !g || !m || !v) throw new Error(`DdaeAdamEmaInPlace needs inputs p${i}, g${i}, m${i} and v${i}`);
      const t = { p, g, m, v, ema };
      checkAdamShapes('DdaeAdamEmaInPlace', t);
      return t;
    });
    if (Object.keys(inputs).length !== 1 + slots.reduce((n, t) => n + (t.ema ? 5 : 4), 0)) throw new Error(`DdaeAdamEmaInPlace: inputs must be scale and p, g, m, v[, e] 0..${count - 1}, got ${Object.keys(inputs).join(', ')}`);
    const a = args.attrs as unknown as AdamAttrs;
    const written = (t: AdamTensors) => [t.p, t.m, t.v, ...(t.ema ? [t.ema] : [])];
    const limit = storageBuffersPerShader(backend);
    const maxGroups = (backend as unknown as { device: { limits: Record<string, number> } }).device.limits['maxComputeWorkgroupsPerDimension'];
    // In place: every written buffer exclusively owned, none twice, none also a gradient or the scale.
    const readIds = new Set<object>([scale.dataId, ...slots.map((t) => t.g.dataId)]);
    const seen = new Set<object>();
    const inPlace = slots.map((t) => {
      const ws = written(t);
      const distinct = new Set(ws.map((w) => w.dataId)).size === ws.length;
      const ok = distinct && adamInPlaceSlots(limit, t.ema !== undefined) > 0 && ws.every((w) => exclusivelyOwned(backend, w) && !readIds.has(w.dataId) && !seen.has(w.dataId));
      if (ok) for (const w of ws) seen.add(w.dataId);
      return ok;
    });
    const results: tf.TensorInfo[][] = slots.map((t, i) => (inPlace[i] ? [] : adamOutOfPlace(backend, t, scale, a)));
    for (const withEma of [true, false]) {
      // Groups of similar sizes (the grid covers the largest of a group): sorted by size, then cut.
      const members = slots.map((_, i) => i).filter((i) => inPlace[i] && (slots[i].ema !== undefined) === withEma);
      members.sort((x, y) => size(slots[x].p) - size(slots[y].p) || x - y);
      const per = adamInPlaceSlots(limit, withEma);
      for (let first = 0; first < members.length; first += per) {
        const group = members.slice(first, first + per);
        const largest = Math.max(...group.map((i) => size(slots[i].p)));
        const [x, y] = elementGrid(backend, largest);
        if (y > maxGroups) throw new Error(`DdaeAdamEmaInPlace: a parameter of ${largest} elements exceeds one dispatch`);
        const constants = new ArrayBuffer(64);
        new Float32Array(constants).set(adamConstants(a));
        new Uint32Array(constants).set(group.map((i) => size(slots[i].p)), 12);
        const bound = [scale, ...group.flatMap((i) => [slots[i].g, ...written(slots[i])])];
        dispatchInPlace(backend, `ddaeAdamInPlace_${group.length}_${withEma}`, adamInPlaceCode(group.length, withEma), bound, group.flatMap((i) => written(slots[i])), constants, [x, y, group.length]);
        for (const i of group) results[i] = written(slots[i]).map((w) => sameTensor(backend, w));
      }
    }
    return results.flat();
  },
};

function size(t: tf.TensorInfo): number {
  return t.shape.reduce((p, d) => p * d, 1);
}
