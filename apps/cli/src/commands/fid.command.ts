import * as fs from 'node:fs';
import path from 'node:path';
import { CliError } from '../api-client';
import { numberOption, parseBackend, parseGpu, withInlineBackend } from './pretrain.command';

export interface FidArgs {
  checkpoint?: string;
  samples?: string;
  steps?: string;
  seed?: string;
  batch?: string;
  'kid-subsets'?: string;
  'kid-subset-size'?: string;
  backend?: string;
  gpu?: string;
}

const EXAMPLE = 'npm run ddae -- fid --checkpoint tmp/ddpm-small --samples 2000 --steps 50';

export function fidOptionsFromArgs(a: FidArgs): { checkpoint: string; samples: number; steps?: number; seed: number; batch: number; kidSubsets: number; kidSubsetSize: number } {
  if (!a.checkpoint) throw new CliError(`fid needs --checkpoint <dir>: a run's checkpoint directory (its newest checkpoint is used) or one step-XXXXXXXX directory: ${EXAMPLE}`);
  return {
    checkpoint: a.checkpoint,
    samples: numberOption('samples', a.samples, { int: true, min: 2, max: 20000, example: '2000' }) ?? 2000,
    steps: numberOption('steps', a.steps, { int: true, min: 2, max: 1000, example: '50' }),
    seed: numberOption('seed', a.seed, { int: true, min: 0, example: '0' }) ?? 0,
    batch: numberOption('batch', a.batch, { int: true, positive: true, example: '64' }) ?? 64,
    kidSubsets: numberOption('kid-subsets', a['kid-subsets'], { int: true, positive: true, max: 1000, example: '20' }) ?? 20,
    kidSubsetSize: numberOption('kid-subset-size', a['kid-subset-size'], { int: true, min: 2, example: '500' }) ?? 500,
  };
}

/**
 * `ddae fid`: FID and KID of a checkpoint's samples against the Fashion-MNIST test split, in the
 * committed classifier's feature space (the function the worker calls after pretraining).
 */
export async function fidInline(a: FidArgs, opts: { json: boolean; log?: (line: string) => void }): Promise<string> {
  const o = fidOptionsFromArgs(a);
  parseBackend(a.backend);
  parseGpu(a.gpu);
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!fs.existsSync(o.checkpoint)) throw new CliError(`--checkpoint ${o.checkpoint} does not exist: pass the --out directory of a pretrain run`);
  const { latestCheckpoint, defaultSamplerSteps, verifyCheckpoint } = await import('@ddae/diffusion');
  let ckptPath = o.checkpoint;
  if (!fs.existsSync(path.join(ckptPath, 'manifest.json'))) {
    const found = latestCheckpoint(ckptPath);
    if (!found) throw new CliError(`${o.checkpoint} holds no valid checkpoint (step-XXXXXXXX directories with a manifest.json): train one with npm run ddae -- pretrain ... --out ${o.checkpoint}`);
    ckptPath = found.path;
  }
  let method: 'ddpm' | 'edm';
  try {
    method = verifyCheckpoint(ckptPath).manifest.method;
  } catch (error) {
    throw new CliError(`cannot load ${ckptPath}: ${(error as Error).message}`);
  }
  const steps = o.steps ?? defaultSamplerSteps(method);
  return withInlineBackend(a, async (backend) => {
    const { evaluateGenerationQuality, FidClassifierError, GenerationQualityError } = await import('@ddae/compute');
    log(`backend: ${backend.backend} (${backend.detail})`);
    log(`sampling ${o.samples} images from ${ckptPath} (${method}, ${steps} ${method === 'ddpm' ? 'DDIM' : 'Heun'} steps, seed ${o.seed})`);
    const started = Date.now();
    let lastLog = started;
    try {
      const g = await evaluateGenerationQuality(ckptPath, {
        samples: o.samples,
        steps,
        seed: o.seed,
        batch: o.batch,
        kidSubsets: o.kidSubsets,
        kidSubsetSize: o.kidSubsetSize,
        onProgress: (done, total) => {
          const now = Date.now();
          if (now - lastLog >= 10_000) {
            lastLog = now;
            log(`sampler step ${done}/${total} (${((now - started) / 1000).toFixed(0)} s)`);
          }
        },
      });
      if (opts.json) return JSON.stringify({ checkpoint: ckptPath, method, backend: backend.backend, ...g });
      const small = o.samples < 1000 ? ' (under 1,000 samples FID is biased upward: read KID)' : '';
      return [
        `FID (${g.extractor}) ${g.fid.toFixed(3)}${small}`,
        `KID (${g.extractor}, cubic polynomial kernel, unbiased) ${g.kid.mean.toExponential(3)} ± ${g.kid.std.toExponential(2)} over ${g.kid.subsets} subsets of ${g.kid.subsetSize}`,
        `${g.samples} samples of ${ckptPath} (step ${g.step}, ${g.sampler} ${g.steps} steps, seed ${g.seed}) against ${g.referenceCount} images of ${g.reference}; extractor sha256 ${g.extractorSha256}; ${g.seconds.toFixed(1)} s`,
      ].join('\n');
    } catch (error) {
      if (error instanceof GenerationQualityError || error instanceof FidClassifierError) throw new CliError(error.message);
      throw error;
    }
  });
}
