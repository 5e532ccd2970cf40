import { balancedSubset } from './balanced-subset';
import { createRng } from './seeded-order';

/** `n` labels of `classes` classes in a seeded, uneven order. */
function poolLabels(n: number, classes: number, seed: number): Uint8Array {
  const rng = createRng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rng() * classes));
}

function perClass(labels: ArrayLike<number>, picked: Uint32Array, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const i of picked) counts[labels[i]]++;
  return counts;
}

describe('balancedSubset', () => {
  const labels = poolLabels(2000, 10, 7);

  it('takes budget / classes images of every class, the remainder one more each for the lowest classes', () => {
    expect(perClass(labels, balancedSubset(labels, 100, 10), 10)).toEqual(new Array(10).fill(10));
    expect(perClass(labels, balancedSubset(labels, 103, 10), 10)).toEqual([11, 11, 11, 10, 10, 10, 10, 10, 10, 10]);
    expect(balancedSubset(labels, 103, 10)).toHaveLength(103);
  });

  it('takes each class in pool order: ascending, distinct positions, the first of each class', () => {
    const picked = balancedSubset(labels, 50, 10);
    expect([...picked]).toEqual([...picked].sort((a, b) => a - b));
    expect(new Set(picked).size).toBe(50);
    const firstFive = (c: number) => [...labels.keys()].filter((i) => labels[i] === c).slice(0, 5);
    for (let c = 0; c < 10; c++) expect([...picked].filter((i) => labels[i] === c)).toEqual(firstFive(c));
  });

  it('is deterministic, and a smaller budget is nested in a larger one', () => {
    expect(balancedSubset(labels, 300, 10)).toEqual(balancedSubset(labels, 300, 10));
    const large = new Set(balancedSubset(labels, 500, 10));
    expect([...balancedSubset(labels, 100, 10)].every((i) => large.has(i))).toBe(true);
    // Another seeded order of the pool: another subset.
    expect(balancedSubset(poolLabels(2000, 10, 8), 100, 10)).not.toEqual(balancedSubset(labels, 100, 10));
  });

  it('fills a class short of images from the others, meeting the budget exactly', () => {
    // Class 2 has only 3 images: it gives all 3, the other 7 come from the next images of the rest.
    const short = Uint8Array.from([...new Array(40).fill(0), 2, 2, 2, ...new Array(40).fill(1)]);
    const picked = balancedSubset(short, 30, 3);
    expect(picked).toHaveLength(30);
    expect(perClass(short, picked, 3)).toEqual([17, 10, 3]);
    expect(balancedSubset(short, short.length, 3)).toHaveLength(short.length);
  });

  it('refuses a budget below the class count, above the pool, or not a positive integer', () => {
    expect(() => balancedSubset(labels, 9, 10)).toThrow(/cannot cover 10 classes: use at least 10/);
    expect(() => balancedSubset(labels, 2001, 10)).toThrow(/exceeds the 2000 training images/);
    expect(() => balancedSubset(labels, 10.5, 10)).toThrow(/positive integer/);
    expect(() => balancedSubset(Uint8Array.from([0, 3]), 2, 2)).toThrow(/label 3 at position 1/);
  });
});
