import { planFilterGradChunks } from './conv2d-backprop-filter';

describe('planFilterGradChunks', () => {
  it('cuts the sum over (image, output row) so that chunks x filter size fills about 2M threads', () => {
    // A 3x3, 64 -> 64 convolution at 32x32, batch 64: 2,048 rows, 36,864 filter elements.
    const p = planFilterGradChunks(64, 32, 3 * 3 * 64 * 64);
    expect(p.chunks * p.rowsPerChunk).toBeGreaterThanOrEqual(64 * 32);
    expect((p.chunks - 1) * p.rowsPerChunk).toBeLessThan(64 * 32);
    expect(p.chunks * 3 * 3 * 64 * 64).toBeGreaterThan(1 << 20);
    expect(p.chunks * 3 * 3 * 64 * 64).toBeLessThanOrEqual((1 << 21) * 1.1);
  });

  it('keeps at least two rows per chunk for small filters, and one chunk when the sum is short', () => {
    expect(planFilterGradChunks(64, 32, 9)).toEqual({ rowsPerChunk: 2, chunks: 1024 });
    expect(planFilterGradChunks(1, 1, 9)).toEqual({ rowsPerChunk: 1, chunks: 1 });
    expect(planFilterGradChunks(1, 2, 1 << 22)).toEqual({ rowsPerChunk: 2, chunks: 1 });
  });
});
