import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { ConvAddAttrs } from '@ddae/diffusion';

/**
 * DdaeConv2DAdd for webgpu (libs/diffusion fused.ts, FUSED_KERNELS.convAdd): conv2d + bias + addend
 * in one dispatch, as the native backend has it, where tf ops take a FusedConv2D then an Add.
 *
 * It is tfjs-webgpu's own FusedConv2D (its tiled conv2d / matmul programs, whichever it picks for
 * the shape) with the addend in the slot of PReLU's weights, whose per-element read already
 * broadcasts a [N,1,1,C] or [N,H,W,C] tensor to the output, and the PReLU in the programs' epilogue
 * replaced by an add: `value = (conv + bias) + addend`, the order of the composite ops. The
 * replacement is textual, so it is checked: a program whose code lacks the PReLU it replaces (a
 * tfjs-webgpu other than the 4.22 pinned in STACK.md) throws instead of running unpatched.
 * Gradients are fused.ts's (the backend's two convolution gradient kernels and sums).
 */

/** tfjs-webgpu 4.22's PReLU epilogue (binary_op_util.ts PRELU and PRELU_VEC4), `a` the value, `b` the weights. */
const PRELU_SNIPPETS = [
  'if (a < 0.0) { return b * a; }  return a;',
  `
  let aLessThanZero = vec4<f32>(a < vec4<f32>(0.0));
  return (aLessThanZero * (b * a)) + ((vec4<f32>(1.0) - aLessThanZero) * a);
`,
];

interface PatchableProgram {
  activation?: string | null;
  shaderKey: string;
  getUserCode(): string;
}

/** Makes a program built for PReLU add its "weights" instead (its shader key says so, so pipelines never mix). */
function addInsteadOfPrelu(program: PatchableProgram): void {
  const code = program.getUserCode.bind(program);
  program.shaderKey = `${program.shaderKey}_ddaeAddend`;
  program.getUserCode = () => {
    const source = code();
    const snippet = PRELU_SNIPPETS.find((s) => source.includes(s));
    if (!snippet) throw new Error(`DdaeConv2DAdd: ${program.shaderKey} has no PReLU epilogue to turn into an add (tfjs-backend-webgpu changed? STACK.md pins 4.22)`);
    return source.replace(snippet, 'return a + b;');
  };
}

export const convAddConfig: tf.KernelConfig = {
  kernelName: 'DdaeConv2DAdd',
  backendName: 'webgpu',
  kernelFunc: function ddaeConv2DAdd(args) {
    const backend = args.backend as unknown as WebGPUBackend & Record<string, unknown>;
    const { x, filter, bias, addend } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    if (!x || !filter || !bias || !addend) throw new Error('DdaeConv2DAdd needs inputs x, filter, bias and addend');
    const { stride, pad } = args.attrs as unknown as ConvAddAttrs;
    const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filter.shape as [number, number, number, number], stride, 1, pad === 0 ? 'valid' : pad);
    const [n, ho, wo, cout] = info.outShape;
    const perImage = addend.shape.join() === [n, 1, 1, cout].join();
    if (!perImage && addend.shape.join() !== info.outShape.join()) {
      throw new Error(`DdaeConv2DAdd: addend [${addend.shape}] is neither per image [${n},1,1,${cout}] nor the output's [${n},${ho},${wo},${cout}]`);
    }
    const fused = tf.getKernel('FusedConv2D', 'webgpu');
    if (!fused) throw new Error('tfjs-backend-webgpu registered no FusedConv2D: its version changed? (STACK.md pins 4.22)');
    // Every program FusedConv2D runs for this call goes through runWebGPUProgram: the ones with the
    // PReLU epilogue are patched on the way. Whatever wrapper was there (a dispatch counter) stays.
    const own = Object.getOwnPropertyDescriptor(backend, 'runWebGPUProgram');
    const run = backend.runWebGPUProgram as (program: PatchableProgram, ...rest: unknown[]) => tf.TensorInfo;
    let patched = 0;
    backend['runWebGPUProgram'] = function (this: unknown, program: PatchableProgram, ...rest: unknown[]) {
      if (program.activation === 'prelu') {
        addInsteadOfPrelu(program);
        patched++;
      }
      return run.call(this, program, ...rest);
    };
    let out: tf.TensorInfo;
    try {
      out = fused.kernelFunc({
        inputs: { x, filter, bias, preluActivationWeights: addend },
        backend: args.backend,
        attrs: { strides: stride, pad: pad === 0 ? 'valid' : pad, dataFormat: 'NHWC', dilations: 1, activation: 'prelu', leakyreluAlpha: 0 },
      }) as tf.TensorInfo;
    } finally {
      if (own) Object.defineProperty(backend, 'runWebGPUProgram', own);
      else delete (backend as Partial<Record<string, unknown>>)['runWebGPUProgram'];
    }
    if (patched === 0) {
      backend.disposeData(out.dataId);
      throw new Error('DdaeConv2DAdd: FusedConv2D ran no program with the PReLU epilogue, so the addend was not added (tfjs-backend-webgpu changed? STACK.md pins 4.22)');
    }
    return out;
  },
};
