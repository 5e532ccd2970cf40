import { retryWrite } from './retry';

describe('retryWrite', () => {
  afterEach(() => jest.useRealTimers());

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

  /** Runs a write that always fails on a fake clock; resolves with when each attempt was made and the error. */
  async function failingRun(options: { totalMs?: number }, advanceMs: number): Promise<{ at: number[]; delays: number[]; error: unknown }> {
    jest.useFakeTimers({ now: 0 });
    const at: number[] = [];
    const delays: number[] = [];
    let error: unknown;
    void retryWrite('w', async () => {
      at.push(Date.now());
      throw new Error('down');
    }, { ...options, onRetry: (_e, d) => delays.push(d) }).catch((e: unknown) => (error = e));
    await jest.advanceTimersByTimeAsync(advanceMs);
    return { at, delays, error };
  }

  it('retries while the next attempt still falls within the budget, up to its end exactly', async () => {
    // 0 + 250 <= 600: wait; 250 + 500 > 600: give up after two attempts.
    expect(await failingRun({ totalMs: 600 }, 1_000)).toMatchObject({ at: [0, 250], delays: [250] });
    // An attempt due exactly at the deadline (250 + 500 = 750) is still made.
    const edge = await failingRun({ totalMs: 750 }, 2_000);
    expect(edge.at).toEqual([0, 250, 750]);
    expect(edge.error).toHaveProperty('message', 'w failed: down');
  });

  it('defaults to a one-minute budget, doubling the delay up to 5 s', async () => {
    const run = await failingRun({}, 60_000);
    expect(run.error).toHaveProperty('message', 'w failed: down');
    expect(run.delays.slice(0, 6)).toEqual([250, 500, 1_000, 2_000, 4_000, 5_000]);
    expect(Math.max(...run.delays)).toBe(5_000);
    // The last attempt came within the minute, and one more 5 s wait would have passed it.
    const last = run.at[run.at.length - 1];
    expect(last).toBeLessThanOrEqual(60_000);
    expect(last + 5_000).toBeGreaterThan(60_000);
  });
});
