/**
 * Where a training step's time goes, per kernel: one step of libs/diffusion's trainer under
 * tf.profile on the chosen backend, after `--warmup` steps (shader compilation). On webgpu the
 * kernel times come from GPU timestamp queries when the adapter offers `timestamp-query` (else
 * tfjs reports none, and this says so).
 *   npm run -s bench -- profile ... is not wired; run it directly:
 *   node -r @swc-node/register bench/profile.ts [--backend webgpu|native|wasm|cpu] [--unet tiny|small|base32] [--batch N] [--warmup N] [--steps N] [--without K1,K2] [--json]
 * Prints a table by total time (without --json) and, last, one JSON line.
 *
 * On webgpu it also counts dispatches (every compute dispatch recorded: a kernel call of ours is
 * 1-4 of them, a reshape none) and times `--steps` (default 2) unprofiled steps after the profiled one:
 * `hostMs`, from the step's start to the loss read it ends with (the JavaScript that records and
 * submits every dispatch: the step reads nothing else), `hostCpuMs`, the CPU time of the main
 * thread over the same span (Linux: /proc, 10 ms ticks; what the host spends whatever else runs),
 * and `wallMs`, until that read returns. On a software adapter (lavapipe) the queued work runs on
 * the same CPU cores while the host records, so `hostMs` there moves with the machine's load.
 * `--without` unregisters kernels of ours first (e.g. DdaeClipScale,DdaeConv2DAdd): the model then
 * composes tf ops where it used them, which measures what each kernel saves.
 */
import * as tf from '@tensorflow/tfjs';
import { DIT_PRESETS, isDiTPreset, type BackendName, type PretrainTask } from '@ddae/contracts';
import { gpuFromEnv, releaseBackend, selectBackend } from '@ddae/compute';
import { readFileSync } from 'node:fs';
import { createTrainer, type UNetModelConfig } from '@ddae/diffusion';

const UNETS: Record<string, Omit<UNetModelConfig, 'imageSize' | 'imageChannels'>> = {
  tiny: { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4 },
  small: { baseChannels: 16, channelMults: [1, 2, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 8 },
  base32: { baseChannels: 32, channelMults: [1, 2, 2], blocksPerLevel: 2, attentionResolutions: [], dropout: 0.1, groups: 8 },
};

interface KernelRow {
  kernel: string;
  calls: number;
  ms: number;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, fallback: string) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : fallback;
  };
  const backend = opt('--backend', 'webgpu') as BackendName;
  const unetName = opt('--unet', 'tiny');
  const batch = Number(opt('--batch', '8'));
  const warmup = Number(opt('--warmup', '1'));
  const json = argv.includes('--json');
  const timedSteps = Number(opt('--steps', '2'));
  const without = opt('--without', '').split(',').filter((k) => k !== '');
  // `--model dit-tiny|dit-small` profiles a DiT preset instead of a UNet (as bench/main.ts's --model).
  const modelName = opt('--model', '');
  if (modelName !== '' && !isDiTPreset(modelName)) throw new Error(`--model ${Object.keys(DIT_PRESETS).join('|')}, got ${modelName}`);
  const unet = UNETS[unetName];
  if (!unet) throw new Error(`--unet ${Object.keys(UNETS).join('|')}, got ${unetName}`);
  const network = isDiTPreset(modelName) ? { dit: { ...DIT_PRESETS[modelName] } } : { unet };
  const networkName = isDiTPreset(modelName) ? modelName : unetName;
  const selected = await selectBackend(backend, backend === 'webgpu' ? { gpu: gpuFromEnv() } : {});
  try {
    for (const k of without) {
      if (!tf.getKernel(k, tf.getBackend())) throw new Error(`--without ${k}: no such kernel on ${tf.getBackend()}`);
      tf.unregisterKernel(k, tf.getBackend());
    }
    const size = 32;
    const count = Math.max(64, batch);
    const images = new Float32Array(count * size * size).map((_, i) => Math.sin(i * 0.37));
    const task: PretrainTask = {
      kind: 'pretrain', runId: 'profile', method: 'ddpm', ...network, dataset: { name: 'fashion-mnist' }, steps: 1_000_000, batchSize: batch,
      learningRate: 2e-4, warmupSteps: 0, gradClip: 1, emaDecayCap: 0.9999, checkpointEvery: 1_000_000, seed: 0, checkpointDir: '/nonexistent/profile-never-writes',
    };
    const trainer = createTrainer(task, images, count, { imageSize: size, imageChannels: 1 });
    for (let i = 0; i < warmup; i++) await trainer.step();
    const probe = instrument();
    const t0 = performance.now();
    const info = await tf.profile(async () => {
      await trainer.step();
    });
    const wallMs = performance.now() - t0;
    const dispatches = probe.dispatches;
    const steps: { hostMs: number; hostCpuMs: number | null; wallMs: number; dispatches: number }[] = [];
    for (let i = 0; i < timedSteps; i++) {
      probe.reset();
      const cpu0 = mainThreadCpuMs();
      const start = performance.now();
      await trainer.step();
      const end = performance.now();
      const hostCpuMs = cpu0 === null || probe.firstReadCpuMs === undefined ? null : probe.firstReadCpuMs - cpu0;
      steps.push({ hostMs: round1((probe.firstReadAt ?? end) - start), hostCpuMs, wallMs: round1(end - start), dispatches: probe.dispatches });
    }
    probe.restore();
    const byKernel = new Map<string, KernelRow>();
    let timed = 0;
    for (const k of info.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : Number.NaN;
      if (Number.isFinite(ms)) timed++;
      const row = byKernel.get(k.name) ?? { kernel: k.name, calls: 0, ms: 0 };
      row.calls++;
      row.ms += Number.isFinite(ms) ? ms : 0;
      byKernel.set(k.name, row);
    }
    const rows = [...byKernel.values()].sort((a, b) => b.ms - a.ms);
    const kernelMs = rows.reduce((s, r) => s + r.ms, 0);
    trainer.dispose();
    const out = {
      backend: selected.backend,
      adapter: selected.gpu ? { name: selected.gpu.name, fallback: selected.gpu.fallback } : null,
      unet: isDiTPreset(modelName) ? null : unetName,
      model: networkName,
      batch,
      kernels: info.kernels.length,
      kernelsTimed: timed,
      kernelMs: Number(kernelMs.toFixed(2)),
      wallMs: Number(wallMs.toFixed(1)),
      dispatches: probe.counted ? dispatches : null,
      steps,
      without,
      hostMsMedian: steps.length ? median(steps.map((x) => x.hostMs)) : null,
      hostCpuMsMedian: steps.length && steps.every((x) => x.hostCpuMs !== null) ? median(steps.map((x) => x.hostCpuMs as number)) : null,
      rows: rows.map((r) => ({ ...r, ms: Number(r.ms.toFixed(3)), share: kernelMs > 0 ? Number((r.ms / kernelMs).toFixed(4)) : null })),
      note: timed === 0 ? 'no kernel time reported (no timestamp-query on this adapter?): call counts only' : `${timed} of ${info.kernels.length} kernel calls timed`,
    };
    if (!json) {
      process.stdout.write(`${out.backend}${out.adapter ? ` on ${out.adapter.name}` : ''}: ${isDiTPreset(modelName) ? `${modelName} DiT` : `${unetName} UNet`}, batch ${batch}: ${out.kernels} kernel calls, ${out.kernelMs} ms in kernels, ${out.wallMs} ms wall (under the profiler)\n`);
      if (out.dispatches !== null) process.stdout.write(`${out.dispatches} dispatches per step; unprofiled steps (host ms / host CPU ms / wall ms): ${steps.map((x) => `${x.hostMs} / ${x.hostCpuMs} / ${x.wallMs}`).join(', ')}\n`);
      for (const r of out.rows.slice(0, 25)) process.stdout.write(`${r.kernel.padEnd(28)} ${String(r.calls).padStart(6)} calls ${r.ms.toFixed(1).padStart(10)} ms ${r.share === null ? '' : `${(100 * r.share).toFixed(1)} %`}\n`);
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await releaseBackend();
  }
}

function round1(x: number): number {
  return Number(x.toFixed(1));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : round1((s[s.length / 2 - 1] + s[s.length / 2]) / 2);
}

/** CPU time of this process's main thread in ms (Linux /proc, 10 ms ticks), or null elsewhere. */
function mainThreadCpuMs(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // Fields after the command name's closing parenthesis: state is the 3rd field, utime the 14th, stime the 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/**
 * Counts dispatches (the backend's dispatchCountInPass, which tfjs-webgpu's programs and our
 * multi-output ones both increment) and notes when a step first reads a tensor, through the
 * backend instance (webgpu only; elsewhere nothing is counted).
 */
function instrument(): { dispatches: number; firstReadAt: number | undefined; firstReadCpuMs: number | undefined; counted: boolean; reset(): void; restore(): void } {
  const backend = tf.backend() as unknown as Record<string, unknown>;
  const nothing = (): void => undefined;
  const state = { dispatches: 0, firstReadAt: undefined as number | undefined, firstReadCpuMs: undefined as number | undefined, counted: false, reset: nothing, restore: nothing };
  if (tf.getBackend() !== 'webgpu' || typeof backend['dispatchCountInPass'] !== 'number') return state;
  let inPass = backend['dispatchCountInPass'] as number;
  Object.defineProperty(backend, 'dispatchCountInPass', {
    configurable: true,
    get: () => inPass,
    set: (v: number) => {
      if (v > inPass) state.dispatches += v - inPass;
      inPass = v;
    },
  });
  const read = backend['read'] as (...a: unknown[]) => unknown;
  backend['read'] = function (this: unknown, ...a: unknown[]) {
    if (state.firstReadAt === undefined) {
      state.firstReadAt = performance.now();
      state.firstReadCpuMs = mainThreadCpuMs() ?? undefined;
    }
    return read.apply(this, a);
  };
  state.counted = true;
  state.reset = () => {
    state.dispatches = 0;
    state.firstReadAt = undefined;
    state.firstReadCpuMs = undefined;
  };
  state.restore = () => {
    Object.defineProperty(backend, 'dispatchCountInPass', { configurable: true, writable: true, enumerable: true, value: inPass });
    delete backend['read'];
  };
  return state;
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
