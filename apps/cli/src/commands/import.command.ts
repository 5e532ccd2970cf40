import * as fs from 'node:fs';
import path from 'node:path';
import { DATASET_NAMES, DATASET_SHAPES, METHODS, ditConfigProblem, paddedImageSize, type DatasetName, type Method } from '@ddae/contracts';
import { CliError, UsageError } from '../api-client';
import { numberOption, parseBackboneArgs, withInlineBackend } from './pretrain.command';

/** The raw option values of `import` (strings as typed). */
export interface ImportArgs {
  backbone?: string;
  preset?: string;
  unet?: string;
  dit?: string;
  method?: string;
  dataset?: string;
  'image-size'?: string;
  out?: string;
}

const EXAMPLE = 'npm run ddae -- import model.safetensors --preset tiny --method ddpm --out tmp/imported';

/** What `import` did: the checkpoint it wrote and where its weights came from. */
export interface ImportResult {
  checkpoint: string;
  source: string;
  sha256: string;
  backbone: 'unet' | 'dit';
  method: Method;
  parameters: number;
  imageSize: number;
  imageChannels: number;
}

/**
 * `ddae import <file.safetensors>`: a PyTorch twin's weights (bench/torch_twin.py names) become one
 * of our checkpoints under --out (`<out>/step-00000000`), which `probe --checkpoint` and sweeps read
 * like a pretrained one. The architecture comes from --preset / --unet / --dit (as for pretrain);
 * the input side from --dataset (padded) or --image-size (32), the channels from --dataset or the
 * file. A file that does not match writes nothing and names the first tensor that does not.
 */
export async function importInline(file: string | undefined, a: ImportArgs, opts: { json: boolean }): Promise<string> {
  if (!file) throw new UsageError(`import needs a safetensors file: ${EXAMPLE}`);
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new CliError(`import: ${file} is not a file (a .safetensors file of the PyTorch twin's weights): ${EXAMPLE}`);
  if (a.method !== undefined && !(METHODS as readonly string[]).includes(a.method)) throw new CliError(`--method must be one of ${METHODS.join('|')} (got "${a.method}"): ${EXAMPLE}`);
  const method = (a.method ?? 'ddpm') as Method;
  if (!a.out) throw new CliError(`import needs --out <dir> for the checkpoint: ${EXAMPLE}`);
  const out = path.resolve(a.out);
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) throw new CliError(`--out ${a.out} is not empty: import writes a new checkpoint directory, give a new or empty one`);
  if (a.dataset !== undefined && !(DATASET_NAMES as readonly string[]).includes(a.dataset)) throw new CliError(`--dataset must be one of ${DATASET_NAMES.join('|')} (got "${a.dataset}")`);
  const dataset = a.dataset as DatasetName | undefined;
  const net = parseBackboneArgs(a);
  const backbone = 'dit' in net ? 'dit' : 'unet';
  const imageSize =
    numberOption('image-size', a['image-size'], { int: true, min: 1, max: 256, example: '32' }) ?? (dataset !== undefined ? paddedImageSize(DATASET_SHAPES[dataset].size) : 32);
  if ('dit' in net) {
    const problem = ditConfigProblem(net.dit, imageSize);
    if (problem) throw new CliError(`--${a.dit !== undefined ? 'dit' : 'preset'}: ${problem.message} (images of ${imageSize}x${imageSize}; --image-size sets it)`);
  } else if (imageSize % 2 ** (net.unet.channelMults.length - 1) !== 0) {
    throw new CliError(`--image-size ${imageSize}: the UNet's ${net.unet.channelMults.length} levels must halve it exactly`);
  }
  // The weights are only copied (the network is built for its parameter shapes): the cpu backend does.
  return withInlineBackend({ backend: 'cpu' }, () => writeImport(file, { method, out, dataset, net, backbone, imageSize }, opts));
}

async function writeImport(
  file: string,
  a: { method: Method; out: string; dataset: DatasetName | undefined; net: ReturnType<typeof parseBackboneArgs>; backbone: 'unet' | 'dit'; imageSize: number },
  opts: { json: boolean },
): Promise<string> {
  const { method, out, dataset, net, backbone, imageSize } = a;
  // Lazy: TensorFlow.js loads only for the inline commands.
  const { importTorchCheckpoint, twinImageChannels, WeightMismatchError, SafetensorsError } = await import('@ddae/diffusion');
  let imageChannels = dataset !== undefined ? DATASET_SHAPES[dataset].channels : 1;
  let result;
  try {
    result = importTorchCheckpoint(
      path.resolve(file),
      (st) => {
        const fromFile = twinImageChannels(st, backbone);
        if (dataset !== undefined && fromFile !== undefined && fromFile !== imageChannels) {
          throw new CliError(`${file} takes ${fromFile}-channel images, but ${dataset} has ${imageChannels}`);
        }
        imageChannels = fromFile ?? imageChannels;
        return 'dit' in net ? { backbone: 'dit', ...net.dit, imageSize, imageChannels } : { ...net.unet, imageSize, imageChannels };
      },
      method,
      out,
    );
  } catch (error) {
    if (error instanceof WeightMismatchError) throw new CliError(`import: ${file} does not fit the ${backbone} given (--preset/--unet/--dit): ${error.message}; nothing written`);
    if (error instanceof SafetensorsError) throw new CliError(`import: ${file}: ${error.message}; nothing written`);
    throw error;
  }
  const r: ImportResult = {
    checkpoint: result.checkpoint.path,
    source: path.resolve(file),
    sha256: result.sourceSha256,
    backbone,
    method,
    parameters: result.parameterCount,
    imageSize,
    imageChannels,
  };
  if (opts.json) return JSON.stringify(r);
  return [`imported ${r.parameters} parameters (${backbone}, ${method}, ${imageSize}x${imageSize}x${imageChannels})`, `checkpoint ${r.checkpoint}`, `source ${r.source}`, `sha256 ${r.sha256}`].join('\n');
}
