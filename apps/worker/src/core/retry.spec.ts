import { retryWrite } from './retry';

describe('retryWrite', () => {
  it('retries a failing write until it succeeds', async () => {
    let calls = 0;
    const delays: number[] = [];
    const value = await retryWrite('write', async () => {
      calls += 1;
      if (calls < 3) throw new Error('connection refused');
      return 42;
    }, { onRetry: (_e, d) => delays.push(d) });
    expect(value).toBe(42);
    expect(delays).toEqual([250, 500]);
  });

  it('gives up after its budget with the last error', async () => {
    await expect(retryWrite('record checkpoint', async () => Promise.reject(new Error('down')), { totalMs: 600 })).rejects.toThrow('record checkpoint failed: down');
  });
});
