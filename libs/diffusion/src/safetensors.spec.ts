import { halfToFloat, readSafetensors, SafetensorsError, writeSafetensors } from './safetensors';

/** A file from a header object and raw data bytes, as another writer could produce it. */
function rawFile(header: unknown, data: Uint8Array, headerText?: string): Buffer {
  const head = Buffer.from(headerText ?? JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(8 + head.length + data.length);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  Buffer.from(data).copy(out, 8 + head.length);
  return out;
}

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

describe('safetensors', () => {
  it('round-trips F32 tensors, their order, shapes and metadata', () => {
    const a = { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-7, -1e30]) };
    const b = { shape: [], data: Float32Array.from([42]) };
    const c = { shape: [0, 4], data: new Float32Array(0) };
    const buf = writeSafetensors({ 'blocks.a.weight': a, scalar: b, empty: c }, { format: 'pt', note: 'x' });
    // The reference writer pads the header to 8 bytes, so the data section is aligned.
    expect(Number(buf.readBigUInt64LE(0)) % 8).toBe(0);
    const back = readSafetensors(buf);
    expect([...back.tensors.keys()]).toEqual(['blocks.a.weight', 'scalar', 'empty']);
    expect(back.tensors.get('blocks.a.weight')).toEqual({ dtype: 'F32', shape: [2, 3], data: a.data });
    expect(back.tensors.get('scalar')?.data[0]).toBe(42);
    expect(back.tensors.get('empty')?.shape).toEqual([0, 4]);
    expect(back.metadata).toEqual({ format: 'pt', note: 'x' });
  });

  it('reads F16 and BF16 as float32', () => {
    // 1.0, -2.0, 65504 (max half), 2^-24 (smallest subnormal) in binary16; 1.5 and -0.15625 in bfloat16.
    const half = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]).buffer);
    const bf = new Uint8Array(new Uint16Array([0x3fc0, 0xbe20]).buffer);
    const data = new Uint8Array([...half, ...bf]);
    const file = readSafetensors(rawFile({ h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] }, b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] } }, data));
    expect(Array.from(file.tensors.get('h')?.data ?? [])).toEqual([1, -2, 65504, 2 ** -24]);
    expect(Array.from(file.tensors.get('b')?.data ?? [])).toEqual([1.5, -0.15625]);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });

  it('accepts tensors listed out of data order (the header is a JSON object, not a list)', () => {
    const file = readSafetensors(rawFile({ second: { dtype: 'F32', shape: [1], data_offsets: [4, 8] }, first: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1, 2)));
    expect(file.tensors.get('first')?.data[0]).toBe(1);
    expect(file.tensors.get('second')?.data[0]).toBe(2);
  });

  it.each([
    ['a file shorter than the length prefix', Buffer.alloc(5), /shorter than the 8-byte header length/],
    ['a header length past the end', (() => { const b = rawFile({}, new Uint8Array(0)); b.writeBigUInt64LE(1000n, 0); return b; })(), /header length 1000 exceeds the file/],
    ['a header that is not JSON', rawFile(null, new Uint8Array(0), '{"a": '), /header is not UTF-8 JSON/],
    ['a header that is a list', rawFile([1, 2], new Uint8Array(0)), /header is not a JSON object/],
    ['a non-string metadata value', rawFile({ __metadata__: { n: 1 } }, new Uint8Array(0)), /__metadata__\.n is not a string/],
    ['an unknown dtype', rawFile({ w: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, f32(1)), /tensor "w": unknown dtype "F33"/],
    ['an unsupported dtype', rawFile({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor "w": dtype I64 is not supported/],
    ['a negative dimension', rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)), /tensor "w": shape \[-1\]/],
    ['reversed offsets', rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, f32(1)), /tensor "w": data_offsets \[4,0\]/],
    ['offsets past the data', rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(1)), /tensor "w": data_offsets \[0, 8\] run past the data section \(4 bytes\)/],
    ['a size that is not dtype x shape', rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(1, 2)), /tensor "w": 8 bytes, but F32 \[3\] needs 12/],
    ['overlapping tensors', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(1, 2, 3)), /tensor "b" overlaps "a"/],
    ['a gap between tensors', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32(1, 2, 3)), /gap of 4 bytes before tensor "b"/],
    ['trailing bytes', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1, 2)), /cover 4 bytes of the 8-byte data section/],
  ])('rejects %s with a clear error', (_what, buf, message) => {
    expect(() => readSafetensors(buf)).toThrow(SafetensorsError);
    expect(() => readSafetensors(buf)).toThrow(message);
  });

  it('refuses to write values that do not fill the shape', () => {
    expect(() => writeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(/tensor "w": 3 values for shape \[2, 2\]/);
  });
});
