import { Rng } from './rng';

describe('Rng', () => {
  it('dropoutMask draws the same numbers as uniform() and leaves the same state', () => {
    const fast = new Rng(42);
    const slow = new Rng(42);
    const keep = 0.9;
    const mask = fast.dropoutMask(10_001, keep);
    const expected = Float32Array.from({ length: 10_001 }, () => (slow.uniform() < keep ? 1 / keep : 0));
    expect(Array.from(mask)).toEqual(Array.from(expected));
    expect(fast.getState()).toEqual(slow.getState());
    const zeros = mask.filter((v) => v === 0).length;
    expect(zeros).toBeGreaterThan(800);
    expect(zeros).toBeLessThan(1200);
  });
});
