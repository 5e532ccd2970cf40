import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { AdamEmaAttrs } from '@ddae/diffusion';

/**
 * Kernels of our own for the webgpu backend, where tfjs-backend-webgpu's own cost the most.
 *
 * Conv2DBackpropFilter (a convolution's weight gradient): tfjs-webgpu runs one GPU thread per
 * filter element, each looping over batch x output height x output width: 36,864 threads of
 * 65,536 products each for a 3x3, 64 -> 64 convolution at 32x32 and batch 64. Measured on an
 * H200 (docs/results.md) that one kernel was 83 % of a training step's GPU time, 56x slower than
 * the input gradient of the same convolutions. Ours splits the sum over (image, output row) into
 * chunks: one thread per (chunk, filter element) writes a partial sum, and a second dispatch adds
 * the chunks up in a fixed order (deterministic: no atomics). Same arithmetic, about a thousand
 * times more threads in flight.
 *
 * DdaeAdamEmaScaled (Adam + EMA, the clipping scale a tensor) and DdaeGroupNorm / DdaeGroupNormGrad
 * (GroupNorm + SiLU): the fused kernels libs/diffusion asks for by name (fused.ts), as the native
 * backend has them, so that a training step is fewer dispatches (the host's cost per dispatch is
 * most of a step on a GPU: docs/results.md). Reductions run one workgroup per group or channel with
 * a fixed-order tree: deterministic.
 */

/** About this many threads in the first dispatch (enough to fill a large GPU), when the sum is long enough. */
const TARGET_THREADS = 1 << 21;
/** A thread sums at least this many output rows (a chunk shorter than that costs more in partial sums than it saves). */
const MIN_ROWS_PER_CHUNK = 2;

/** How the sum over (image, output row) is cut: `rowsPerChunk` rows per partial sum, `chunks` of them. */
export function planFilterGradChunks(batch: number, outHeight: number, filterSize: number): { rowsPerChunk: number; chunks: number } {
  const rows = batch * outHeight;
  const wanted = Math.max(1, Math.floor(TARGET_THREADS / Math.max(1, filterSize)));
  const rowsPerChunk = Math.min(rows, Math.max(MIN_ROWS_PER_CHUNK, Math.ceil(rows / wanted)));
  return { rowsPerChunk, chunks: Math.ceil(rows / rowsPerChunk) };
}

type ProgramBase = Pick<WebGPUProgram, 'outputShape' | 'shaderKey' | 'dispatchLayout' | 'dispatch' | 'variableNames' | 'uniforms' | 'workgroupSize' | 'size' | 'getUserCode'>;

function flatProgram(outputShape: number[], shaderKey: string, variableNames: string[], uniforms: string, body: string): ProgramBase {
  const webgpu = require('@tensorflow/tfjs-backend-webgpu') as typeof import('@tensorflow/tfjs-backend-webgpu');
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const dispatchLayout = webgpu.webgpu_util.flatDispatchLayout(outputShape);
  return {
    outputShape,
    shaderKey,
    variableNames,
    uniforms,
    workgroupSize,
    size: true,
    dispatchLayout,
    dispatch: webgpu.webgpu_util.computeDispatch(dispatchLayout, outputShape, workgroupSize),
    // tfjs-webgpu wraps this with the bindings, uniforms, getX/getDy accessors and
    // getCoordsFromIndex for the output's rank; `main(index)` is called once per output element.
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${body}
        }
      }`,
  };
}

/** Partial weight gradients [chunks, kh, kw, inC, outC] of a channels-last convolution. */
function partialFilterGradProgram(chunks: number, filterShape: [number, number, number, number]): ProgramBase {
  return flatProgram(
    [chunks, ...filterShape],
    'ddaeConv2DDerFilterPartial',
    ['x', 'dy'],
    'pads : vec2<i32>, strides : vec2<i32>, rows : i32, rowsPerChunk : i32, outHeight : i32, outWidth : i32, inHeight : i32, inWidth : i32,',
    `
          // Rank-5 coordinates are tfjs-webgpu's struct vec5 (fields x, y, z, w, u), not an array.
          let coords = getCoordsFromIndex(index);
          let chunk = coords.x;
          let wR = coords.y;
          let wC = coords.z;
          let d1 = coords.w;
          let d2 = coords.u;
          let first = chunk * uniforms.rowsPerChunk;
          let last = min(first + uniforms.rowsPerChunk, uniforms.rows);
          var dotProd = 0.0;
          for (var r = first; r < last; r = r + 1) {
            let b = r / uniforms.outHeight;
            let yR = r - b * uniforms.outHeight;
            let xR = wR + yR * uniforms.strides[0] - uniforms.pads[0];
            if (xR < 0 || xR >= uniforms.inHeight) {
              continue;
            }
            for (var yC = 0; yC < uniforms.outWidth; yC = yC + 1) {
              let xC = wC + yC * uniforms.strides[1] - uniforms.pads[1];
              if (xC < 0 || xC >= uniforms.inWidth) {
                continue;
              }
              dotProd = dotProd + getX(b, xR, xC, d1) * getDy(b, yR, yC, d2);
            }
          }
          setOutputAtIndex(index, dotProd);`,
  );
}

/** The sum over the leading axis of [chunks, ...shape], in chunk order: one thread per output element. */
function sumLeadingAxisProgram(shape: number[]): ProgramBase {
  return flatProgram(
    shape,
    'ddaeSumLeadingAxis',
    ['partial'],
    'chunks : i32,',
    `
          var total = 0.0;
          for (var c = 0; c < uniforms.chunks; c = c + 1) {
            total = total + partial[c * uniforms.size + index];
          }
          setOutputAtIndex(index, total);`,
  );
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

/** Threads of a workgroup that reduces one group or channel (a power of two: the tree below halves it). */
const REDUCE_THREADS = 256;

/** A program with one workgroup of REDUCE_THREADS per `workgroups` (each reduces one group or channel). */
function reduceProgram(outputShape: number[], shaderKey: string, variableNames: string[], uniforms: string, workgroups: number, body: string): ProgramBase {
  const webgpu = require('@tensorflow/tfjs-backend-webgpu') as typeof import('@tensorflow/tfjs-backend-webgpu');
  if (workgroups > 65535) throw new Error(`${shaderKey}: ${workgroups} workgroups exceed one dispatch dimension (65,535)`);
  return {
    outputShape,
    shaderKey,
    variableNames,
    uniforms,
    workgroupSize: [REDUCE_THREADS, 1, 1],
    size: true,
    dispatchLayout: webgpu.webgpu_util.flatDispatchLayout(outputShape),
    dispatch: [workgroups, 1, 1],
    getUserCode: () => `
      var<workgroup> partA : array<f32, ${REDUCE_THREADS}>;
      var<workgroup> partB : array<f32, ${REDUCE_THREADS}>;
      // Sums partA (and partB) over the workgroup into element 0, in a fixed order (deterministic).
      fn reduceTwo() {
        workgroupBarrier();
        for (var stride = ${REDUCE_THREADS / 2}u; stride > 0u; stride = stride / 2u) {
          if (localId.x < stride) {
            partA[localId.x] = partA[localId.x] + partA[localId.x + stride];
            partB[localId.x] = partB[localId.x] + partB[localId.x + stride];
          }
          workgroupBarrier();
        }
      }
      fn main(index : i32) {
        let wg = index / ${REDUCE_THREADS};
        let lid = i32(localId.x);
        ${body}
      }`,
  };
}

/** GroupNorm's shape uniforms: channels-last x [N, H, W, C], G groups of cg = C / G channels. */
const GN_UNIFORMS = 'groups : i32, hw : i32, channels : i32, cg : i32, eps : f32,';

/** The flat index of the k-th element (k < hw * cg) of group g of image n. */
const GN_ELEMENT = `
          let hwAt = k / uniforms.cg;
          let at = (n * uniforms.hw + hwAt) * uniforms.channels + g * uniforms.cg + (k - hwAt * uniforms.cg);`;

/** Per (image, group): the mean (`mean`) or 1 / sqrt(biased variance + eps) (`rstd`), two passes over the group. */
function groupStatsProgram(groups: number, which: 'mean' | 'rstd'): ProgramBase {
  return reduceProgram([groups], `ddaeGroupNorm_${which}`, ['x'], GN_UNIFORMS, groups, `
        let n = wg / uniforms.groups;
        let g = wg - n * uniforms.groups;
        let count = uniforms.hw * uniforms.cg;
        var a = 0.0;
        for (var k = lid; k < count; k = k + ${REDUCE_THREADS}) {${GN_ELEMENT}
          a = a + x[at];
        }
        partA[lid] = a;
        partB[lid] = 0.0;
        reduceTwo();
        let mean = partA[0] / f32(count);
        ${
          which === 'mean'
            ? `if (lid == 0) { setOutputAtIndex(wg, mean); }`
            : `workgroupBarrier();
        var q = 0.0;
        for (var k = lid; k < count; k = k + ${REDUCE_THREADS}) {${GN_ELEMENT}
          let d = x[at] - mean;
          q = q + d * d;
        }
        partA[lid] = q;
        reduceTwo();
        if (lid == 0) { setOutputAtIndex(wg, 1.0 / sqrt(partA[0] / f32(count) + uniforms.eps)); }`
        }`);
}

/** The normalised, scaled and shifted value z of element `index` (channel c, stats at n * groups + g), as WGSL lines. */
const GN_Z = `
          let c = index % uniforms.channels;
          let n = index / (uniforms.hw * uniforms.channels);
          let stat = n * uniforms.groups + c / uniforms.cg;
          let xhat = (x[index] - mean[stat]) * rstd[stat];
          let z = xhat * gamma[c] + beta[c];`;

/** dz from dy: SiLU's derivative s (1 + z (1 - s)) when `silu`, else dy itself. */
const gnDz = (silu: boolean, index: string) =>
  silu ? `let s = 1.0 / (1.0 + exp(-z));
          let dz = dy[${index}] * (s * (1.0 + z * (1.0 - s)));` : `let dz = dy[${index}];`;

function groupNormForwardProgram(shape: number[], silu: boolean): ProgramBase {
  return flatProgram(shape, `ddaeGroupNorm_y_${silu}`, ['x', 'gamma', 'beta', 'mean', 'rstd'], GN_UNIFORMS, `${GN_Z}
          setOutputAtIndex(index, ${silu ? 'z / (1.0 + exp(-z))' : 'z'});`);
}

/** Per (image, group), interleaved: [sum of dxhat, sum of dxhat * xhat] where dxhat = dz * gamma. */
function groupNormGradSumsProgram(groups: number, silu: boolean): ProgramBase {
  return reduceProgram([groups * 2], `ddaeGroupNormGrad_sums_${silu}`, ['dy', 'x', 'gamma', 'beta', 'mean', 'rstd'], GN_UNIFORMS, groups, `
        let n = wg / uniforms.groups;
        let g = wg - n * uniforms.groups;
        let count = uniforms.hw * uniforms.cg;
        let m = mean[wg];
        let r = rstd[wg];
        var a = 0.0;
        var b = 0.0;
        for (var k = lid; k < count; k = k + ${REDUCE_THREADS}) {${GN_ELEMENT}
          let c = at % uniforms.channels;
          let xhat = (x[at] - m) * r;
          let z = xhat * gamma[c] + beta[c];
          ${gnDz(silu, 'at')}
          let dxhat = dz * gamma[c];
          a = a + dxhat;
          b = b + dxhat * xhat;
        }
        partA[lid] = a;
        partB[lid] = b;
        reduceTwo();
        if (lid == 0) {
          setOutputAtIndex(wg * 2, partA[0]);
          setOutputAtIndex(wg * 2 + 1, partB[0]);
        }`);
}

/** dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), the means over the element's group. */
function groupNormGradXProgram(shape: number[], silu: boolean): ProgramBase {
  return flatProgram(shape, `ddaeGroupNormGrad_dx_${silu}`, ['dy', 'x', 'gamma', 'beta', 'mean', 'rstd', 'sums'], GN_UNIFORMS, `${GN_Z}
          ${gnDz(silu, 'index')}
          let count = f32(uniforms.hw * uniforms.cg);
          let dxhat = dz * gamma[c];
          setOutputAtIndex(index, rstd[stat] * (dxhat - sums[stat * 2] / count - xhat * sums[stat * 2 + 1] / count));`);
}

/** Per channel: dgamma = sum of dz * xhat, or dbeta = sum of dz, over images and positions. */
function groupNormGradAffineProgram(channels: number, silu: boolean, which: 'gamma' | 'beta'): ProgramBase {
  return reduceProgram([channels], `ddaeGroupNormGrad_d${which}_${silu}`, ['dy', 'x', 'gamma', 'beta', 'mean', 'rstd'], `${GN_UNIFORMS} images : i32,`, channels, `
        let c = wg;
        let g = c / uniforms.cg;
        let count = uniforms.images * uniforms.hw;
        var a = 0.0;
        for (var k = lid; k < count; k = k + ${REDUCE_THREADS}) {
          let n = k / uniforms.hw;
          let at = k * uniforms.channels + c;
          let stat = n * uniforms.groups + g;
          let xhat = (x[at] - mean[stat]) * rstd[stat];
          let z = xhat * gamma[c] + beta[c];
          ${gnDz(silu, 'at')}
          a = a + ${which === 'gamma' ? 'dz * xhat' : 'dz'};
        }
        partA[lid] = a;
        partB[lid] = 0.0;
        reduceTwo();
        if (lid == 0) { setOutputAtIndex(c, partA[0]); }`);
}

interface GroupNormKernelAttrs {
  groups: number;
  eps: number;
  silu: boolean;
}

function groupNormUniforms(shape: number[], a: GroupNormKernelAttrs): { type: string; data: number[] }[] {
  const [, h, w, c] = shape;
  if (c % a.groups !== 0) throw new Error(`GroupNorm: ${c} channels do not split into ${a.groups} groups`);
  return [
    { type: 'int32', data: [a.groups] },
    { type: 'int32', data: [h * w] },
    { type: 'int32', data: [c] },
    { type: 'int32', data: [c / a.groups] },
    { type: 'float32', data: [a.eps] },
  ];
}

let registered = false;

/**
 * Replaces tfjs-webgpu's Conv2DBackpropFilter with ours and registers our fused Adam + EMA step
 * (once per process; after the backend is set up).
 */
export function registerWebGpuKernels(): void {
  if (registered) return;
  const original = tf.getKernel('Conv2DBackpropFilter', 'webgpu');
  if (!original) throw new Error('tfjs-backend-webgpu registered no Conv2DBackpropFilter: its version changed? (STACK.md pins 4.22)');
  tf.unregisterKernel('Conv2DBackpropFilter', 'webgpu');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'webgpu',
    kernelFunc: function ddaeConv2DBackpropFilter(args) {
      const { inputs, attrs } = args;
      const backend = args.backend as unknown as WebGPUBackend;
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = attrs as unknown as { strides: [number, number] | number; pad: 'valid' | 'same' | number; dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number] };
      if (a.dataFormat === 'NCHW' || x.dtype !== 'float32') return original.kernelFunc(args);
      const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
      const filterSize = a.filterShape.reduce((p, d) => p * d, 1);
      const { rowsPerChunk, chunks } = planFilterGradChunks(info.batchSize, info.outHeight, filterSize);
      const partial = backend.runWebGPUProgram(partialFilterGradProgram(chunks, a.filterShape) as WebGPUProgram, [x, dy], 'float32', [
        { type: 'int32', data: [info.padInfo.top, info.padInfo.left] },
        { type: 'int32', data: [info.strideHeight, info.strideWidth] },
        { type: 'int32', data: [info.batchSize * info.outHeight] },
        { type: 'int32', data: [rowsPerChunk] },
        { type: 'int32', data: [info.outHeight] },
        { type: 'int32', data: [info.outWidth] },
        { type: 'int32', data: [info.inHeight] },
        { type: 'int32', data: [info.inWidth] },
      ]);
      const summed = backend.runWebGPUProgram(sumLeadingAxisProgram(a.filterShape) as WebGPUProgram, [partial], 'float32', [{ type: 'int32', data: [chunks] }]);
      backend.disposeData(partial.dataId);
      return summed;
    },
  });
  // Adam + EMA with the clipping scale as a tensor (libs/diffusion fused.ts, GPU_FUSED_KERNELS.adamEmaScaled).
  tf.registerKernel({
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
  });
  // GroupNorm (+ SiLU) forward and backward (libs/diffusion fused.ts, FUSED_KERNELS.groupNorm and
  // groupNormGrad): 3 dispatches forward and 4 backward instead of about 12 and 25 composed ones.
  tf.registerKernel({
    kernelName: 'DdaeGroupNorm',
    backendName: 'webgpu',
    kernelFunc: function ddaeGroupNorm(args) {
      const backend = args.backend as unknown as WebGPUBackend;
      const { x, gamma, beta } = args.inputs as Record<string, tf.TensorInfo>;
      const a = args.attrs as unknown as GroupNormKernelAttrs;
      const uniforms = groupNormUniforms(x.shape, a);
      const groups = x.shape[0] * a.groups;
      const mean = backend.runWebGPUProgram(groupStatsProgram(groups, 'mean') as WebGPUProgram, [x], 'float32', uniforms);
      const rstd = backend.runWebGPUProgram(groupStatsProgram(groups, 'rstd') as WebGPUProgram, [x], 'float32', uniforms);
      const y = backend.runWebGPUProgram(groupNormForwardProgram(x.shape, a.silu) as WebGPUProgram, [x, gamma, beta, mean, rstd], 'float32', uniforms);
      // The kernel's contract: mean and rstd are [N, G].
      return [y, { ...mean, shape: [x.shape[0], a.groups] }, { ...rstd, shape: [x.shape[0], a.groups] }];
    },
  });
  tf.registerKernel({
    kernelName: 'DdaeGroupNormGrad',
    backendName: 'webgpu',
    kernelFunc: function ddaeGroupNormGrad(args) {
      const backend = args.backend as unknown as WebGPUBackend;
      const { dy, x, gamma, beta, mean, rstd } = args.inputs as Record<string, tf.TensorInfo>;
      const a = args.attrs as unknown as GroupNormKernelAttrs;
      const uniforms = groupNormUniforms(x.shape, a);
      const groups = x.shape[0] * a.groups;
      const flat = (t: tf.TensorInfo) => ({ ...t, shape: [t.shape.reduce((p, d) => p * d, 1)] });
      const inputs = [dy, x, gamma, beta, flat(mean), flat(rstd)];
      const sums = backend.runWebGPUProgram(groupNormGradSumsProgram(groups, a.silu) as WebGPUProgram, inputs, 'float32', uniforms);
      const dx = backend.runWebGPUProgram(groupNormGradXProgram(x.shape, a.silu) as WebGPUProgram, [...inputs, sums], 'float32', uniforms);
      backend.disposeData(sums.dataId);
      const channels = x.shape[3];
      const affine = [...uniforms, { type: 'int32', data: [x.shape[0]] }];
      const dgamma = backend.runWebGPUProgram(groupNormGradAffineProgram(channels, a.silu, 'gamma') as WebGPUProgram, inputs, 'float32', affine);
      const dbeta = backend.runWebGPUProgram(groupNormGradAffineProgram(channels, a.silu, 'beta') as WebGPUProgram, inputs, 'float32', affine);
      return [dx, { ...dgamma, shape: gamma.shape }, { ...dbeta, shape: beta.shape }];
    },
  });
  registered = true;
}
