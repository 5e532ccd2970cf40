/**
 * Where a training step's time goes, per kernel: one step of libs/diffusion's trainer under
 * tf.profile on the chosen backend, after `--warmup` steps (shader compilation). On webgpu the
 * kernel times come from GPU timestamp queries when the adapter offers `timestamp-query` (else
 * tfjs reports none, and this says so).
 *   npm run -s bench -- profile ... is not wired; run it directly:
 *   node -r @swc-node/register bench/profile.ts [--backend webgpu|native|wasm|cpu] [--unet tiny|small|base32] [--batch N] [--warmup N] [--json]
 * Prints a table by total time (without --json) and, last, one JSON line.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendName, PretrainTask } from '@ddae/contracts';
import { gpuFromEnv, releaseBackend, selectBackend } from '@ddae/compute';
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
  const unet = UNETS[unetName];
  if (!unet) throw new Error(`--unet ${Object.keys(UNETS).join('|')}, got ${unetName}`);
  const selected = await selectBackend(backend, backend === 'webgpu' ? { gpu: gpuFromEnv() } : {});
  try {
    const size = 32;
    const count = Math.max(64, batch);
    const images = new Float32Array(count * size * size).map((_, i) => Math.sin(i * 0.37));
    const task: PretrainTask = {
      kind: 'pretrain', runId: 'profile', method: 'ddpm', unet, dataset: { name: 'fashion-mnist' }, steps: 1_000_000, batchSize: batch,
      learningRate: 2e-4, warmupSteps: 0, gradClip: 1, emaDecayCap: 0.9999, checkpointEvery: 1_000_000, seed: 0, checkpointDir: '/nonexistent/profile-never-writes',
    };
    const trainer = createTrainer(task, images, count, { imageSize: size, imageChannels: 1 });
    for (let i = 0; i < warmup; i++) await trainer.step();
    const t0 = performance.now();
    const info = await tf.profile(async () => {
      await trainer.step();
    });
    const wallMs = performance.now() - t0;
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
      unet: unetName,
      batch,
      kernels: info.kernels.length,
      kernelsTimed: timed,
      kernelMs: Number(kernelMs.toFixed(2)),
      wallMs: Number(wallMs.toFixed(1)),
      rows: rows.map((r) => ({ ...r, ms: Number(r.ms.toFixed(3)), share: kernelMs > 0 ? Number((r.ms / kernelMs).toFixed(4)) : null })),
      note: timed === 0 ? 'no kernel time reported (no timestamp-query on this adapter?): call counts only' : `${timed} of ${info.kernels.length} kernel calls timed`,
    };
    if (!json) {
      process.stdout.write(`${out.backend}${out.adapter ? ` on ${out.adapter.name}` : ''}: ${unetName} UNet, batch ${batch}: ${out.kernels} kernel calls, ${out.kernelMs} ms in kernels, ${out.wallMs} ms wall (under the profiler)\n`);
      for (const r of out.rows.slice(0, 25)) process.stdout.write(`${r.kernel.padEnd(28)} ${String(r.calls).padStart(6)} calls ${r.ms.toFixed(1).padStart(10)} ms ${r.share === null ? '' : `${(100 * r.share).toFixed(1)} %`}\n`);
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await releaseBackend();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
