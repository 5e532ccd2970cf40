/**
 * The safetensors format (what PyTorch users publish), read and written without a dependency:
 * an 8-byte little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { string: string } }`,
 * then the raw little-endian tensor bytes; offsets are relative to the end of the header.
 * F32, F16 and BF16 tensors read as float32; other dtypes are refused with their name.
 */

/** The dtypes read here (as float32). */
export const SAFETENSORS_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
/** Every dtype the format defines, so an unsupported one is named as such, not as garbage. */
const KNOWN_DTYPES = new Set(['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64']);
/** Headers above this are refused (the reference implementation caps them at 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** One tensor of a safetensors file, converted to float32. */
export interface SafeTensor {
  /** Its dtype in the file. */
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  /** Tensors in the order of their data in the file. */
  tensors: Map<string, SafeTensor>;
  /** The free-form `__metadata__` (string to string), empty when absent. */
  metadata: Record<string, string>;
}

/** A file that is not valid safetensors; the message says where. */
export class SafetensorsError extends Error {
  constructor(message: string) {
    super(`safetensors: ${message}`);
    this.name = 'SafetensorsError';
  }
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses and validates a safetensors buffer: the header length within the file, the header JSON,
 * every entry's dtype, shape and offsets (inside the data section, sized dtype x shape, no two
 * overlapping, no gap, covering the data section exactly).
 * @throws SafetensorsError naming the first problem (and the tensor it concerns)
 */
export function readSafetensors(buf: Uint8Array): SafetensorsFile {
  if (buf.length < 8) throw new SafetensorsError(`file of ${buf.length} bytes is shorter than the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, buf.length - 8))) throw new SafetensorsError(`header length ${n} exceeds the file (${buf.length} bytes) or the ${MAX_HEADER_BYTES}-byte cap`);
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new SafetensorsError(`header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new SafetensorsError('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Array<{ name: string; e: HeaderEntry; dtype: SafetensorsDtype }> = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SafetensorsError('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw new SafetensorsError(`__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = raw as Partial<HeaderEntry> | null;
    if (typeof e !== 'object' || e === null) throw new SafetensorsError(`tensor "${name}": entry is not an object`);
    if (typeof e.dtype !== 'string' || !KNOWN_DTYPES.has(e.dtype)) throw new SafetensorsError(`tensor "${name}": unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!(SAFETENSORS_DTYPES as readonly string[]).includes(e.dtype)) throw new SafetensorsError(`tensor "${name}": dtype ${e.dtype} is not supported (only ${SAFETENSORS_DTYPES.join(', ')})`);
    if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) throw new SafetensorsError(`tensor "${name}": shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
    const o = e.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !isNonNegInt(o[0]) || !isNonNegInt(o[1]) || o[1] < o[0]) {
      throw new SafetensorsError(`tensor "${name}": data_offsets ${JSON.stringify(o)} is not [begin, end] with 0 <= begin <= end`);
    }
    if (o[1] > dataLen) throw new SafetensorsError(`tensor "${name}": data_offsets [${o[0]}, ${o[1]}] run past the data section (${dataLen} bytes)`);
    const dtype = e.dtype as SafetensorsDtype;
    const expected = e.shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    if (o[1] - o[0] !== expected) throw new SafetensorsError(`tensor "${name}": ${o[1] - o[0]} bytes, but ${dtype} [${e.shape.join(', ')}] needs ${expected}`);
    entries.push({ name, e: e as HeaderEntry, dtype });
  }
  entries.sort((a, b) => a.e.data_offsets[0] - b.e.data_offsets[0] || a.e.data_offsets[1] - b.e.data_offsets[1]);
  let end = 0;
  let prev = '';
  for (const { name, e } of entries) {
    const [b] = e.data_offsets;
    if (b < end) throw new SafetensorsError(`tensor "${name}" overlaps "${prev}" (its data starts at ${b}, before ${end})`);
    if (b > end) throw new SafetensorsError(`gap of ${b - end} bytes before tensor "${name}" (at ${end})`);
    end = e.data_offsets[1];
    prev = name;
  }
  if (end !== dataLen) throw new SafetensorsError(`the tensors cover ${end} bytes of the ${dataLen}-byte data section`);
  const tensors = new Map<string, SafeTensor>();
  for (const { name, e, dtype } of entries) {
    const bytes = buf.subarray(dataStart + e.data_offsets[0], dataStart + e.data_offsets[1]);
    tensors.set(name, { dtype, shape: [...e.shape], data: toFloat32(bytes, dtype) });
  }
  return { tensors, metadata };
}

function toFloat32(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length / BYTES[dtype];
  const out = new Float32Array(n);
  if (dtype === 'F32') for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  else if (dtype === 'BF16') {
    // bfloat16 is the top half of a float32.
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = view.getUint16(2 * i, true) << 16;
  } else for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  return out;
}

/** IEEE 754 binary16 to a number (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** A tensor to write: float32 values and their shape (row-major). */
export interface TensorToWrite {
  shape: number[];
  data: Float32Array;
}

/**
 * Writes tensors as safetensors, all F32, in the given order (data aligned as the reference writer
 * does: the header padded with spaces to a multiple of 8 bytes).
 * @param metadata optional `__metadata__` (string values only)
 */
export function writeSafetensors(tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>, metadata?: Record<string, string>): Buffer {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new SafetensorsError('a tensor cannot be named __metadata__');
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new SafetensorsError(`tensor "${name}": ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * size] };
    offset += 4 * size;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += ' '.repeat(pad);
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let at = 8 + head.length;
  for (const [, t] of list) {
    for (let i = 0; i < t.data.length; i++) out.writeFloatLE(t.data[i], at + 4 * i);
    at += 4 * t.data.length;
  }
  return out;
}
