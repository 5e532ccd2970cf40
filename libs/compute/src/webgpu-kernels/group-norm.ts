import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { dispatchMultiOutput, flatProgram, reduceProgram, REDUCE_THREADS, storageBuffersPerShader, type ProgramBase } from './program';

/**
 * DdaeGroupNorm / DdaeGroupNormGrad for webgpu (libs/diffusion fused.ts, FUSED_KERNELS.groupNorm and
 * groupNormGrad): GroupNorm, optionally followed by SiLU, in 1 dispatch forward (one workgroup per
 * image and group computes its mean and rstd, then normalises the group: three outputs through
 * dispatchMultiOutput) and 2 backward (every reduction in one dispatch, then dx), instead of about
 * 12 and 25 composed ones. Reductions run one workgroup per group or channel with a fixed-order
 * tree: deterministic.
 */

/** The whole forward in one dispatch: the same sums in the same order as groupStatsProgram, then groupNormForwardProgram's formula. */
function groupNormOneDispatchCode(silu: boolean): string {
  const element = (k: string) => `
    let hwAt = ${k} / uniforms.cg;
    let at = (n * uniforms.hw + hwAt) * uniforms.channels + g * uniforms.cg + (${k} - hwAt * uniforms.cg);`;
  return `
struct Constants { groups : i32, hw : i32, channels : i32, cg : i32, eps : f32, pad0 : f32, pad1 : f32, pad2 : f32 }
@group(0) @binding(0) var<uniform> uniforms : Constants;
@group(0) @binding(1) var<storage, read> x : array<f32>;
@group(0) @binding(2) var<storage, read> gamma : array<f32>;
@group(0) @binding(3) var<storage, read> beta : array<f32>;
@group(0) @binding(4) var<storage, read_write> y : array<f32>;
@group(0) @binding(5) var<storage, read_write> meanOut : array<f32>;
@group(0) @binding(6) var<storage, read_write> rstdOut : array<f32>;
var<workgroup> part : array<f32, ${REDUCE_THREADS}>;
fn reduce() {
  workgroupBarrier();
  for (var stride = ${REDUCE_THREADS / 2}u; stride > 0u; stride = stride / 2u) {
    if (lidG < stride) {
      part[lidG] = part[lidG] + part[lidG + stride];
    }
    workgroupBarrier();
  }
}
var<private> lidG : u32;
@compute @workgroup_size(${REDUCE_THREADS}, 1, 1)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_id) lid3 : vec3<u32>) {
  lidG = lid3.x;
  let wg = i32(wid.x);
  let lid = i32(lid3.x);
  let n = wg / uniforms.groups;
  let g = wg - n * uniforms.groups;
  let count = uniforms.hw * uniforms.cg;
  var a = 0.0;
  for (var k = lid; k < count; k = k + ${REDUCE_THREADS}) {${element('k')}
    a = a + x[at];
  }
  part[lid] = a;
  reduce();
  let mean = part[0] / f32(count);
  workgroupBarrier();
  var q = 0.0;
  for (var k = lid; k < count; k = k + ${REDUCE_THREADS}) {${element('k')}
    let d = x[at] - mean;
    q = q + d * d;
  }
  part[lid] = q;
  reduce();
  let rstd = 1.0 / sqrt(part[0] / f32(count) + uniforms.eps);
  for (var k = lid; k < count; k = k + ${REDUCE_THREADS}) {${element('k')}
    let c = g * uniforms.cg + (k - hwAt * uniforms.cg);
    let xhat = (x[at] - mean) * rstd;
    let z = xhat * gamma[c] + beta[c];
    y[at] = ${silu ? 'z / (1.0 + exp(-z))' : 'z'};
  }
  if (lid == 0) {
    meanOut[wg] = mean;
    rstdOut[wg] = rstd;
  }
}`;
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

/**
 * Every reduction of the backward pass in one dispatch of images x groups + channels workgroups:
 * the first images x groups write, per (image, group), [sum of dxhat, sum of dxhat * xhat]
 * (interleaved, what groupNormGradXProgram reads), the last `channels` write dgamma (sum of
 * dz * xhat) and dbeta (sum of dz) of one channel over images and positions. The same sums in the
 * same order as groupNormGradSumsProgram and groupNormGradAffineProgram below (3 dispatches).
 */
function groupNormGradReduceCode(silu: boolean): string {
  return `
struct Constants { groups : i32, hw : i32, channels : i32, cg : i32, images : i32, pad0 : i32, pad1 : i32, pad2 : i32 }
@group(0) @binding(0) var<uniform> uniforms : Constants;
@group(0) @binding(1) var<storage, read> dy : array<f32>;
@group(0) @binding(2) var<storage, read> x : array<f32>;
@group(0) @binding(3) var<storage, read> gamma : array<f32>;
@group(0) @binding(4) var<storage, read> beta : array<f32>;
@group(0) @binding(5) var<storage, read> mean : array<f32>;
@group(0) @binding(6) var<storage, read> rstd : array<f32>;
@group(0) @binding(7) var<storage, read_write> sums : array<f32>;
@group(0) @binding(8) var<storage, read_write> dgamma : array<f32>;
@group(0) @binding(9) var<storage, read_write> dbeta : array<f32>;
var<workgroup> partA : array<f32, ${REDUCE_THREADS}>;
var<workgroup> partB : array<f32, ${REDUCE_THREADS}>;
var<private> lidG : u32;
fn reduceTwo() {
  workgroupBarrier();
  for (var stride = ${REDUCE_THREADS / 2}u; stride > 0u; stride = stride / 2u) {
    if (lidG < stride) {
      partA[lidG] = partA[lidG] + partA[lidG + stride];
      partB[lidG] = partB[lidG] + partB[lidG + stride];
    }
    workgroupBarrier();
  }
}
@compute @workgroup_size(${REDUCE_THREADS}, 1, 1)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_id) lid3 : vec3<u32>) {
  lidG = lid3.x;
  let wg = i32(wid.x);
  let lid = i32(lid3.x);
  let stats = uniforms.images * uniforms.groups;
  var a = 0.0;
  var b = 0.0;
  if (wg < stats) {
    let n = wg / uniforms.groups;
    let g = wg - n * uniforms.groups;
    let count = uniforms.hw * uniforms.cg;
    let m = mean[wg];
    let r = rstd[wg];
    for (var k = lid; k < count; k = k + ${REDUCE_THREADS}) {
      let hwAt = k / uniforms.cg;
      let at = (n * uniforms.hw + hwAt) * uniforms.channels + g * uniforms.cg + (k - hwAt * uniforms.cg);
      let c = at % uniforms.channels;
      let xhat = (x[at] - m) * r;
      let z = xhat * gamma[c] + beta[c];
      ${gnDz(silu, 'at')}
      let dxhat = dz * gamma[c];
      a = a + dxhat;
      b = b + dxhat * xhat;
    }
  } else {
    let c = wg - stats;
    let g = c / uniforms.cg;
    let count = uniforms.images * uniforms.hw;
    for (var k = lid; k < count; k = k + ${REDUCE_THREADS}) {
      let n = k / uniforms.hw;
      let at = k * uniforms.channels + c;
      let stat = n * uniforms.groups + g;
      let xhat = (x[at] - mean[stat]) * rstd[stat];
      let z = xhat * gamma[c] + beta[c];
      ${gnDz(silu, 'at')}
      a = a + dz * xhat;
      b = b + dz;
    }
  }
  partA[lid] = a;
  partB[lid] = b;
  reduceTwo();
  if (lid == 0) {
    if (wg < stats) {
      sums[wg * 2] = partA[0];
      sums[wg * 2 + 1] = partB[0];
    } else {
      dgamma[wg - stats] = partA[0];
      dbeta[wg - stats] = partB[0];
    }
  }
}`;
}

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

export const groupNormConfig: tf.KernelConfig = {
    kernelName: 'DdaeGroupNorm',
    backendName: 'webgpu',
    kernelFunc: function ddaeGroupNorm(args) {
      const backend = args.backend as unknown as WebGPUBackend;
      const { x, gamma, beta } = args.inputs as Record<string, tf.TensorInfo>;
      const a = args.attrs as unknown as GroupNormKernelAttrs;
      const uniforms = groupNormUniforms(x.shape, a);
      const groups = x.shape[0] * a.groups;
      if (groups <= 65535) {
        const constants = new ArrayBuffer(32);
        const ints = new Int32Array(constants);
        uniforms.slice(0, 4).forEach((u, i) => (ints[i] = u.data[0]));
        new Float32Array(constants)[4] = a.eps;
        const [y, mean, rstd] = dispatchMultiOutput(backend, `ddaeGroupNormOne_${a.silu}`, groupNormOneDispatchCode(a.silu), [x, gamma, beta], [x.shape, [x.shape[0], a.groups], [x.shape[0], a.groups]], constants, [groups, 1]);
        return [y, mean, rstd];
      }
      const mean = backend.runWebGPUProgram(groupStatsProgram(groups, 'mean') as WebGPUProgram, [x], 'float32', uniforms);
      const rstd = backend.runWebGPUProgram(groupStatsProgram(groups, 'rstd') as WebGPUProgram, [x], 'float32', uniforms);
      const y = backend.runWebGPUProgram(groupNormForwardProgram(x.shape, a.silu) as WebGPUProgram, [x, gamma, beta, mean, rstd], 'float32', uniforms);
      // The kernel's contract: mean and rstd are [N, G].
      return [y, { ...mean, shape: [x.shape[0], a.groups] }, { ...rstd, shape: [x.shape[0], a.groups] }];
    },
  };

export const groupNormGradConfig: tf.KernelConfig = {
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
      const channels = x.shape[3];
      // Inputs and three outputs bound (9 storage buffers), one workgroup per (image, group) and per channel.
      if (groups + channels <= 65535 && inputs.length + 3 <= storageBuffersPerShader(backend)) {
        const constants = new Int32Array(8);
        uniforms.slice(0, 4).forEach((u, i) => (constants[i] = u.data[0]));
        constants[4] = x.shape[0];
        const [sums, dgamma, dbeta] = dispatchMultiOutput(backend, `ddaeGroupNormGradReduce_${a.silu}`, groupNormGradReduceCode(a.silu), inputs, [[groups * 2], gamma.shape, beta.shape], constants.buffer, [groups + channels, 1]);
        const dx = backend.runWebGPUProgram(groupNormGradXProgram(x.shape, a.silu) as WebGPUProgram, [...inputs, sums], 'float32', uniforms);
        backend.disposeData(sums.dataId);
        return [dx, dgamma, dbeta];
      }
      const sums = backend.runWebGPUProgram(groupNormGradSumsProgram(groups, a.silu) as WebGPUProgram, inputs, 'float32', uniforms);
      const dx = backend.runWebGPUProgram(groupNormGradXProgram(x.shape, a.silu) as WebGPUProgram, [...inputs, sums], 'float32', uniforms);
      backend.disposeData(sums.dataId);
      const affine = [...uniforms, { type: 'int32', data: [x.shape[0]] }];
      const dgamma = backend.runWebGPUProgram(groupNormGradAffineProgram(channels, a.silu, 'gamma') as WebGPUProgram, inputs, 'float32', affine);
      const dbeta = backend.runWebGPUProgram(groupNormGradAffineProgram(channels, a.silu, 'beta') as WebGPUProgram, inputs, 'float32', affine);
      return [dx, { ...dgamma, shape: gamma.shape }, { ...dbeta, shape: beta.shape }];
    },
  };
