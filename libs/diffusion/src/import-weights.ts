import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Method } from '@ddae/contracts';
import { createBackbone, isDiTConfig, type ModelConfig } from './backbone';
import { writeCheckpoint, type FoundCheckpoint, type ParamEntry } from './checkpoint';
import { Rng } from './rng';
import { readSafetensors, type SafetensorsFile, type TensorToWrite } from './safetensors';

/**
 * How one of our parameters is laid out in the PyTorch twin (bench/torch_twin.py):
 * - `same`: identical (biases, GroupNorm scale and shift);
 * - `linear`: nn.Linear's [out, in] is our [in, out];
 * - `conv`: nn.Conv2d's OIHW is our HWIO (both cross-correlate: no flip);
 * - `patch`: the DiT's patchify conv [width, C, p, p] is our linear map [p*p*C, width] over
 *   patches flattened as (row, column, channel).
 */
export type TorchLayout = 'same' | 'linear' | 'conv' | 'patch';

export interface TorchNameMapping {
  /** Our parameter name (`in_1.conv1.w`). */
  ours: string;
  /** The twin's state_dict key (`blocks.in_1.conv1.weight`). */
  torch: string;
  layout: TorchLayout;
  /** Our shape. */
  shape: number[];
  /** The shape the twin stores. */
  torchShape: number[];
}

/** Buffers the twin registers that hold no weights (recomputed from the configuration on our side). */
const TWIN_BUFFERS: Record<'unet' | 'dit', string[]> = { unet: ['freqs'], dit: ['pos'] };

/** The twin's key of one of our UNet parameters, given the kind of block it belongs to. */
function unetTorchName(ours: string): string {
  const dot = ours.lastIndexOf('.');
  const stem = ours.slice(0, dot);
  const leaf = ours.slice(dot + 1) === 'b' ? 'bias' : 'weight';
  let module: string;
  if (stem === 'temb.dense1') module = 'temb1';
  else if (stem === 'temb.dense2') module = 'temb2';
  else if (stem === 'stem') module = 'stem';
  else if (stem === 'head.norm') module = 'head_norm';
  else if (stem === 'head.conv') module = 'head';
  else if (stem.endsWith('.up')) module = `ups.${stem.slice(0, -'.up'.length)}`;
  else module = `blocks.${stem}`;
  return `${module}.${leaf}`;
}

/** The twin's key of one of our DiT parameters. */
function ditTorchName(ours: string): string {
  const dot = ours.lastIndexOf('.');
  const stem = ours.slice(0, dot);
  const leaf = ours.slice(dot + 1) === 'b' ? 'bias' : 'weight';
  const fixed: Record<string, string> = { patch: 'patchify', 'temb.dense1': 'temb1', 'temb.dense2': 'temb2', 'final.adaln': 'final_adaln', 'final.linear': 'final' };
  if (stem in fixed) return `${fixed[stem]}.${leaf}`;
  const m = /^blk_(\d+)\.(adaln|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)$/.exec(stem);
  if (!m) throw new Error(`no PyTorch name for DiT parameter ${ours}`);
  const sub = m[2].replace(/^attn\./, '').replace(/^mlp\./, '');
  return `blocks.${Number(m[1]) - 1}.${sub}.${leaf}`;
}

function layoutOf(ours: string, shape: number[], dit: boolean): TorchLayout {
  if (dit && ours === 'patch.w') return 'patch';
  if (shape.length === 4) return 'conv';
  if (shape.length === 2) return 'linear';
  return 'same';
}

function torchShapeOf(layout: TorchLayout, shape: number[], config: ModelConfig): number[] {
  switch (layout) {
    case 'same':
      return shape;
    case 'linear':
      return [shape[1], shape[0]];
    case 'conv':
      return [shape[3], shape[2], shape[0], shape[1]];
    case 'patch': {
      const p = isDiTConfig(config) ? config.patch : 1;
      return [shape[1], config.imageChannels, p, p];
    }
  }
}

/**
 * The explicit mapping from the PyTorch twin's state_dict to our parameters, in our checkpoint
 * order, for a UNet or a DiT of `config`.
 */
export function torchTwinMapping(config: ModelConfig): TorchNameMapping[] {
  const net = createBackbone(config, 0);
  try {
    const dit = isDiTConfig(config);
    return [...net.params.entries()].map(([ours, v]) => {
      const layout = layoutOf(ours, v.shape, dit);
      return { ours, torch: dit ? ditTorchName(ours) : unetTorchName(ours), layout, shape: [...v.shape], torchShape: torchShapeOf(layout, v.shape, config) };
    });
  } finally {
    net.dispose();
  }
}

/**
 * The image channels a twin's file was trained on (its first layer's input channels), or undefined
 * when the file lacks that layer (the mapping then names the missing tensor).
 */
export function twinImageChannels(file: SafetensorsFile, backbone: 'unet' | 'dit'): number | undefined {
  const t = file.tensors.get(backbone === 'dit' ? 'patchify.weight' : 'stem.weight');
  return t && t.shape.length === 4 ? t.shape[1] : undefined;
}

/** A file whose tensors do not fit the architecture; `tensor` is the first one that does not. */
export class WeightMismatchError extends Error {
  constructor(
    message: string,
    readonly tensor: string,
  ) {
    super(message);
    this.name = 'WeightMismatchError';
  }
}

/** Permutes row-major `data` of `shape` by `perm` (out axis i = in axis perm[i]). */
function permute(data: Float32Array, shape: number[], perm: number[]): Float32Array {
  const outShape = perm.map((p) => shape[p]);
  const inStrides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float32Array(data.length);
  const idx = new Array<number>(outShape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let k = 0; k < idx.length; k++) src += idx[k] * inStrides[perm[k]];
    out[o] = data[src];
    for (let k = idx.length - 1; k >= 0; k--) {
      if (++idx[k] < outShape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** Our layout of one twin tensor. */
function fromTorch(layout: TorchLayout, data: Float32Array, torchShape: number[]): Float32Array {
  switch (layout) {
    case 'same':
      return data;
    case 'linear':
      return permute(data, torchShape, [1, 0]);
    case 'conv':
    case 'patch':
      // OIHW -> HWIO; for the patch map, HWI flattened is (row, column, channel).
      return permute(data, torchShape, [2, 3, 1, 0]);
  }
}

/** The twin's layout of one of our tensors (for export and tests). */
function toTorch(layout: TorchLayout, data: Float32Array, shape: number[], torchShape: number[]): Float32Array {
  switch (layout) {
    case 'same':
      return data;
    case 'linear':
      return permute(data, shape, [1, 0]);
    case 'conv':
      return permute(data, shape, [3, 2, 0, 1]);
    case 'patch': {
      const [o, c, p] = torchShape;
      return permute(data, [p, p, c, o], [3, 2, 0, 1]);
    }
  }
}

const fmt = (s: number[]) => `[${s.join(', ')}]`;

/**
 * Our flat parameters from a twin's state_dict. Checks every tensor in our order and throws at the
 * first that does not fit: missing (`missing tensor ...`), wrong shape (`... expected [..], found
 * [..]`), then the first unexpected name in the file.
 * @throws WeightMismatchError naming the tensor
 */
export function mapTorchTwinWeights(file: SafetensorsFile, config: ModelConfig): { params: ParamEntry[]; flat: Float32Array; totalSize: number } {
  const mapping = torchTwinMapping(config);
  const arch = isDiTConfig(config) ? 'dit' : 'unet';
  for (const m of mapping) {
    const t = file.tensors.get(m.torch);
    if (!t) throw new WeightMismatchError(`missing tensor "${m.torch}" (our ${m.ours}): the ${arch} expects shape ${fmt(m.torchShape)}`, m.torch);
    if (t.shape.join('x') !== m.torchShape.join('x')) {
      throw new WeightMismatchError(`tensor "${m.torch}" (our ${m.ours}): expected shape ${fmt(m.torchShape)}, found ${fmt(t.shape)}`, m.torch);
    }
  }
  const known = new Set([...mapping.map((m) => m.torch), ...TWIN_BUFFERS[arch]]);
  for (const name of file.tensors.keys()) {
    if (!known.has(name)) throw new WeightMismatchError(`unexpected tensor "${name}": the ${arch} of this configuration has no such parameter`, name);
  }
  const params: ParamEntry[] = [];
  let offset = 0;
  for (const m of mapping) {
    const size = m.shape.reduce((a, b) => a * b, 1);
    params.push({ name: m.ours, shape: m.shape, offset, size });
    offset += size;
  }
  const flat = new Float32Array(offset);
  mapping.forEach((m, i) => {
    const t = file.tensors.get(m.torch) as { data: Float32Array };
    flat.set(fromTorch(m.layout, t.data, m.torchShape), params[i].offset);
  });
  return { params, flat, totalSize: offset };
}

/** The twin's state_dict of our named parameters (the inverse of `mapTorchTwinWeights`), for export. */
export function toTorchTwinTensors(config: ModelConfig, values: Map<string, Float32Array>): Map<string, TensorToWrite> {
  const out = new Map<string, TensorToWrite>();
  for (const m of torchTwinMapping(config)) {
    const v = values.get(m.ours);
    if (!v) throw new Error(`no values for ${m.ours}`);
    out.set(m.torch, { shape: m.torchShape, data: toTorch(m.layout, v, m.shape, m.torchShape) });
  }
  return out;
}

export interface ImportedCheckpoint {
  /** The checkpoint written (`<out>/step-00000000`). */
  checkpoint: FoundCheckpoint;
  /** The source file's path, as given. */
  source: string;
  /** sha256 (hex) of the source file. */
  sourceSha256: string;
  parameterCount: number;
}

/**
 * Imports a PyTorch twin's safetensors file as one of our checkpoints: the weights become both the
 * training and the EMA weights (features read the EMA), the optimiser state is zero, step 0. The
 * file is read, validated and mapped in full before anything is written: a mismatch writes nothing.
 * @param outDir the checkpoint directory (the checkpoint lands in `<outDir>/step-00000000`)
 * @param expectedSha256 when given, the source must hash to it
 */
export function importTorchCheckpoint(
  source: string,
  config: ModelConfig | ((file: SafetensorsFile) => ModelConfig),
  method: Method,
  outDir: string,
  expectedSha256?: string,
): ImportedCheckpoint {
  const buf = fs.readFileSync(source);
  const sourceSha256 = createHash('sha256').update(buf).digest('hex');
  if (expectedSha256 !== undefined && expectedSha256.toLowerCase() !== sourceSha256) {
    throw new WeightMismatchError(`${source}: sha256 ${sourceSha256}, expected ${expectedSha256}`, source);
  }
  const file = readSafetensors(buf);
  const resolved = typeof config === 'function' ? config(file) : config;
  const { params, flat, totalSize } = mapTorchTwinWeights(file, resolved);
  const checkpoint = writeCheckpoint(
    outDir,
    { step: 0, method, config: resolved, params, totalSize, rngState: new Rng(0).getState(), imported: { format: 'safetensors', source, sha256: sourceSha256 } },
    { weights: flat, ema: flat, optimizer: new Float32Array(2 * totalSize) },
  );
  return { checkpoint, source, sourceSha256, parameterCount: totalSize };
}
