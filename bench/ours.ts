/**
 * Child process of bench/main.ts: times OUR code on one backend (chosen once per process, as in a
 * worker's compute child) and prints one JSON line. Wasm threads come from DDAE_WASM_THREADS, set
 * by the parent; the webgpu backend's GPU from DDAE_GPU (a software adapter is accepted: it is
 * asked for by name).
 *   node -r @swc-node/register bench/ours.ts '<json BenchChildConfig>'
 */
import { backboneDefaultLayers, backboneFields, backboneOfModelConfig, type GpuAdapter, type PretrainTask } from '@ddae/contracts';
import { gpuFromEnv, releaseBackend, selectBackend } from '@ddae/compute';
import { createBackbone, createTrainer, extractFeatures, type ModelConfig } from '@ddae/diffusion';

export interface BenchChildConfig {
  task: 'train' | 'features';
  backend: 'native' | 'wasm' | 'cpu' | 'webgpu';
  /** A UNet's configuration, or a DiT's (`backbone: 'dit'`). */
  model: ModelConfig;
  batch: number;
  iters: number;
  warmup: number;
}

export interface BenchChildResult {
  backend: string;
  threads: number;
  imgPerSec: number;
  secPerIter: number;
  iters: number;
  params: number;
  microBatch?: number;
  /** CPU seconds of the whole process (all threads) per wall second while timed: ~threads when they got their cores. */
  cpuPerWall: number;
  /** On webgpu: the adapter that computed. */
  gpu?: GpuAdapter;
}

function syntheticImages(count: number, d: number): Float32Array {
  // Any values in [-1, 1] time the same; a fixed LCG keeps runs identical.
  const out = new Float32Array(count * d);
  let s = 12345;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

let cpuPerWall = 0;

async function time(warmup: number, iters: number, step: () => Promise<void>): Promise<number> {
  for (let i = 0; i < warmup; i++) await step();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) await step();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  cpuPerWall = (cpu.user + cpu.system) / 1e6 / seconds;
  return seconds;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '') as BenchChildConfig;
  const selected = await selectBackend(cfg.backend, cfg.backend === 'webgpu' ? { gpu: gpuFromEnv() } : {});
  const { model, batch } = cfg;
  const d = model.imageSize * model.imageSize * model.imageChannels;
  const count = Math.max(256, batch);
  const images = syntheticImages(count, d);
  let seconds: number;
  let params: number;
  let microBatch: number | undefined;
  if (cfg.task === 'train') {
    const { imageSize, imageChannels } = model;
    const task: PretrainTask = {
      kind: 'pretrain',
      runId: 'bench',
      method: 'ddpm',
      ...backboneFields(backboneOfModelConfig(model)),
      dataset: { name: 'fashion-mnist' },
      steps: 1_000_000,
      batchSize: batch,
      learningRate: 2e-4,
      warmupSteps: 0,
      gradClip: 1,
      emaDecayCap: 0.9999,
      checkpointEvery: 1_000_000,
      seed: 0,
      checkpointDir: '/nonexistent/bench-never-writes',
    };
    const trainer = createTrainer(task, images, count, { imageSize, imageChannels });
    params = trainer.unet.parameterCount();
    microBatch = trainer.microBatch;
    seconds = await time(cfg.warmup, cfg.iters, async () => {
      if (!Number.isFinite(await trainer.step())) throw new Error('non-finite loss');
    });
    trainer.dispose();
  } else {
    const unet = createBackbone(model, 0);
    params = unet.parameterCount();
    const layers = backboneDefaultLayers(backboneOfModelConfig(model), model.imageSize, model.imageChannels);
    const x = images.subarray(0, batch * d);
    seconds = await time(cfg.warmup, cfg.iters, async () => {
      await extractFeatures(unet, 'ddpm', x, batch, 100, layers, { batchSize: batch });
    });
    unet.dispose();
  }
  const result: BenchChildResult = {
    backend: selected.detail,
    threads: selected.wasm?.threads ?? selected.native?.threads ?? 1,
    imgPerSec: (batch * cfg.iters) / seconds,
    secPerIter: seconds / cfg.iters,
    iters: cfg.iters,
    params,
    ...(microBatch !== undefined ? { microBatch } : {}),
    cpuPerWall,
    ...(selected.gpu ? { gpu: selected.gpu } : {}),
  };
  // On webgpu: destroy the device, or the process never exits.
  await releaseBackend();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
