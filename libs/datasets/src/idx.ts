import { gunzipSync } from 'node:zlib';

/** A decoded IDX array (the MNIST / Fashion-MNIST file format): unsigned bytes only. */
export interface IdxArray {
  /** Dimensions, outermost first (count, rows, cols for images; count for labels). */
  dims: number[];
  /** The values, row-major. A view into the decoded buffer (no copy). */
  data: Uint8Array;
}

/** Raised for a file that is present but not a valid IDX file of the expected kind. */
export class IdxFormatError extends Error {
  override name = 'IdxFormatError';
}

const GZIP_MAGIC = [0x1f, 0x8b];
/** IDX type code for unsigned bytes, the only one these data sets use. */
const IDX_UBYTE = 0x08;

/** Gunzips `bytes` when they start with the gzip magic number, else returns them unchanged. */
export function maybeGunzip(bytes: Uint8Array): Uint8Array {
  if (bytes.length >= 2 && bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1]) {
    return new Uint8Array(gunzipSync(bytes));
  }
  return bytes;
}

/**
 * Parses an IDX file (gzip or raw bytes).
 *
 * Validates the magic number (two zero bytes, type 0x08 = unsigned byte, the number of dimensions),
 * optionally the expected number of dimensions, and that the payload size equals the product of the
 * dimensions exactly.
 *
 * @param bytes the file contents, gzip-compressed or not.
 * @param expectedDims the number of dimensions the caller needs (3 for images, 1 for labels); unchecked when omitted.
 * @param source a name for error messages (usually the file path). Default `"IDX data"`.
 */
export function parseIdx(bytes: Uint8Array, expectedDims?: number, source = 'IDX data'): IdxArray {
  const buf = maybeGunzip(bytes);
  if (buf.length < 4) {
    throw new IdxFormatError(`${source}: ${buf.length} bytes is too short for an IDX header`);
  }
  const magic = ((buf[0] << 24) | (buf[1] << 16) | (buf[2] << 8) | buf[3]) >>> 0;
  const magicHex = `0x${magic.toString(16).padStart(8, '0')}`;
  if (buf[0] !== 0 || buf[1] !== 0 || buf[2] !== IDX_UBYTE) {
    throw new IdxFormatError(`${source}: bad IDX magic number ${magicHex} (expected 0x000008NN: unsigned bytes, NN dimensions)`);
  }
  const ndims = buf[3];
  if (ndims === 0 || (expectedDims !== undefined && ndims !== expectedDims)) {
    const want = expectedDims === undefined ? 'at least 1' : `${expectedDims} (magic 0x0000080${expectedDims})`;
    throw new IdxFormatError(`${source}: IDX magic number ${magicHex} declares ${ndims} dimensions, expected ${want}`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (buf.length < headerBytes) {
    throw new IdxFormatError(`${source}: truncated IDX header (${buf.length} bytes, need ${headerBytes})`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const payload = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== headerBytes + payload) {
    throw new IdxFormatError(
      `${source}: IDX size mismatch: dimensions ${dims.join('x')} need ${headerBytes + payload} bytes, the file has ${buf.length}`,
    );
  }
  return { dims, data: buf.subarray(headerBytes) };
}

/** Encodes an unsigned-byte IDX array (raw, not gzipped): for tests and tools. */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = IDX_UBYTE;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
