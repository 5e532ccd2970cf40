import * as fs from 'node:fs';
import path from 'node:path';
import { CliError } from '../api-client';
import { imageGridPng } from '@ddae/render';
import { numberOption, parseBackend, parseGpu, withInlineBackend } from './pretrain.command';

export interface SampleArgs {
  checkpoint?: string;
  n?: string;
  steps?: string;
  seed?: string;
  batch?: string;
  eta?: string;
  out?: string;
  backend?: string;
  gpu?: string;
  weights?: string;
}

const EXAMPLE = 'npm run ddae -- sample --checkpoint tmp/ddpm-small --n 64 --out samples.png';

/** Validated options of `sample` (steps undefined: the method's default). */
function weightsOption(raw: string | undefined): 'ema' | 'raw' {
  if (raw === undefined || raw === 'ema' || raw === 'raw') return raw ?? 'ema';
  throw new CliError(`--weights must be ema (the default, what features use) or raw (the optimiser's current weights), got "${raw}"`);
}

/** The PNG to write: never a file name the user did not give. */
function requiredOut(out: string | undefined): string {
  if (out === undefined) throw new CliError(`sample needs --out FILE, the PNG to write: ${EXAMPLE}`);
  return out;
}

export function sampleOptionsFromArgs(a: SampleArgs): { checkpoint: string; n: number; steps?: number; seed: number; batch: number; eta?: number; out: string; weights: 'ema' | 'raw' } {
  if (!a.checkpoint) throw new CliError(`sample needs --checkpoint <dir>: a run's checkpoint directory (its newest checkpoint is used) or one step-XXXXXXXX directory: ${EXAMPLE}`);
  return {
    checkpoint: a.checkpoint,
    n: numberOption('n', a.n, { int: true, positive: true, max: 4096, example: '64' }) ?? 64,
    steps: numberOption('steps', a.steps, { int: true, positive: true, max: 1000, example: '50' }),
    seed: numberOption('seed', a.seed, { int: true, min: 0, example: '0' }) ?? 0,
    batch: numberOption('batch', a.batch, { int: true, positive: true, example: '64' }) ?? 64,
    eta: numberOption('eta', a.eta, { min: 0, max: 1, example: '0' }),
    out: requiredOut(a.out),
    weights: weightsOption(a.weights),
  };
}

/** `ddae sample`: loads a checkpoint's EMA weights, samples (DDIM for DDPM, Heun for EDM) and writes a PNG grid. */
export async function sampleInline(a: SampleArgs, opts: { json: boolean; log?: (line: string) => void }): Promise<string> {
  const o = sampleOptionsFromArgs(a);
  parseBackend(a.backend);
  parseGpu(a.gpu);
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!fs.existsSync(o.checkpoint)) throw new CliError(`--checkpoint ${o.checkpoint} does not exist: pass the --out directory of a pretrain run`);
  const { assignParams, latestCheckpoint, loadForInference, readCheckpointData, sampleUNet, defaultSamplerSteps } = await import('@ddae/diffusion');
  let ckptPath = o.checkpoint;
  if (!fs.existsSync(path.join(ckptPath, 'manifest.json'))) {
    const found = latestCheckpoint(ckptPath);
    if (!found) throw new CliError(`${o.checkpoint} holds no valid checkpoint (step-XXXXXXXX directories with a manifest.json): train one with npm run ddae -- pretrain ... --out ${o.checkpoint}`);
    ckptPath = found.path;
  }
  return withInlineBackend(a, async (backend) => {
    log(`backend: ${backend.backend} (${backend.detail})`);
    let loaded: ReturnType<typeof loadForInference>;
    try {
      loaded = loadForInference(ckptPath);
      // Raw weights: a diagnostic (e.g. when EMA samples look wrong); features always use the EMA.
      if (o.weights === 'raw') assignParams(loaded.unet, loaded.manifest.params, readCheckpointData(ckptPath).weights);
    } catch (error) {
      throw new CliError(`cannot load ${ckptPath}: ${(error as Error).message}`);
    }
    const { unet, manifest } = loaded;
    const method = manifest.method;
    const steps = o.steps ?? defaultSamplerSteps(method);
    if (method === 'edm' && steps < 2) throw new CliError('--steps must be at least 2 for the EDM Heun sampler (e.g. --steps 18)');
    const sampler = method === 'ddpm' ? `DDIM, ${steps} steps, eta ${o.eta ?? 0}` : `Heun, ${steps} Karras steps (${2 * steps - 1} network calls)`;
    if (method === 'edm' && o.eta !== undefined) log('--eta applies to DDIM only; ignored for this EDM checkpoint');
    log(`sampling ${o.n} images from ${ckptPath} (${method}, step ${manifest.step}, ${o.weights === 'ema' ? 'EMA' : 'raw'} weights) with ${sampler}, seed ${o.seed}`);
    const started = Date.now();
    let lastLog = started;
    let images: Float32Array;
    try {
      images = await sampleUNet(unet, method, {
        n: o.n,
        steps,
        seed: o.seed,
        batchSize: o.batch,
        ...(o.eta !== undefined ? { eta: o.eta } : {}),
        onProgress: (done, total) => {
          const now = Date.now();
          if (now - lastLog >= 10_000) {
            lastLog = now;
            log(`step ${done}/${total} (${((now - started) / 1000).toFixed(0)} s)`);
          }
        },
      });
    } finally {
      unet.dispose();
    }
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    const { imageSize, imageChannels } = manifest.config;
    const grid = imageGridPng(images, o.n, imageSize, imageChannels, { scale: 2, pad: 2 });
    fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
    fs.writeFileSync(o.out, grid.png);
    let mean = 0;
    for (const v of images) mean += v;
    mean /= images.length;
    const summary = { out: o.out, checkpoint: ckptPath, step: manifest.step, method, sampler: method === 'ddpm' ? 'ddim' : 'heun', steps, n: o.n, seed: o.seed, weights: o.weights, seconds, backend: backend.backend, width: grid.width, height: grid.height, meanPixel: Math.round(mean * 1e4) / 1e4 };
    return opts.json ? JSON.stringify(summary) : `wrote ${o.out} (${o.n} samples, ${grid.cols}x${grid.rows} grid, ${grid.width}x${grid.height} px) in ${seconds} s`;
  });
}
