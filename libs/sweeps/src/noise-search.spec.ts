import { coarseLevels, nextNoiseLevels, runNoiseSearch } from './noise-search';

const GRID = [1, 2, 3, 5, 8, 11, 15, 20, 25, 30, 40, 50, 65, 80, 100, 125, 150, 200, 250, 300];

/** A single-peaked accuracy curve with its peak at `peak`. */
const peaked = (peak: number) => (t: number) => 0.9 - 0.1 * Math.abs(Math.log(t) - Math.log(peak));

describe('adaptive noise search', () => {
  it('starts with coarse levels spread over the grid, both ends included', () => {
    expect(coarseLevels(GRID, 4)).toEqual([1, 15, 80, 300]);
    expect(coarseLevels([5, 1, 3], 8)).toEqual([1, 3, 5]);
    expect(nextNoiseLevels(GRID, new Map(), { coarse: 4, minStep: 0 })).toEqual({ next: [1, 15, 80, 300], done: false, best: null });
  });

  it('refines both sides of the best level, then stops when its neighbours are adjacent', () => {
    const probed = new Map([[1, 0.8], [15, 0.85], [65, 0.83], [300, 0.7]]);
    expect(nextNoiseLevels(GRID, probed, { coarse: 4, minStep: 0 }).next).toEqual([5, 30]);
    const adjacent = new Map([[8, 0.8], [11, 0.9], [15, 0.85]]);
    expect(nextNoiseLevels(GRID, adjacent, { coarse: 4, minStep: 0 })).toEqual({ next: [], done: true, best: { noiseLevel: 11, accuracy: 0.9 } });
    const bracketed = new Map([[1, 0.1], [11, 0.9], [300, 0.1]]);
    expect(nextNoiseLevels(GRID, bracketed, { coarse: 4, minStep: 0 }).next).toEqual([3, 65]);
    const finished = new Map([[8, 0.8], [11, 0.9], [15, 0.85], [1, 0.1], [300, 0.1], [3, 0.2], [50, 0.3], [5, 0.5], [20, 0.6], [25, 0.5], [30, 0.4], [40, 0.35], [2, 0.1]]);
    expect(nextNoiseLevels(GRID, finished, { coarse: 4, minStep: 0 })).toEqual({ next: [], done: true, best: { noiseLevel: 11, accuracy: 0.9 } });
  });

  it('stops a side once its neighbour is within minStep', () => {
    const probed = new Map([[1, 0.8], [15, 0.85], [65, 0.83], [300, 0.7]]);
    expect(nextNoiseLevels(GRID, probed, { coarse: 4, minStep: 14 }).next).toEqual([30]);
    expect(nextNoiseLevels(GRID, probed, { coarse: 4, minStep: 1000 }).done).toBe(true);
  });

  it.each([1, 3, 11, 40, 150, 300])('finds the grid best of a single-peaked curve (peak %d) with at most half the probes', async (peak) => {
    const f = peaked(peak);
    const gridBest = GRID.reduce((b, t) => (f(t) > f(b) ? t : b), GRID[0]);
    const calls: number[] = [];
    const r = await runNoiseSearch(GRID, { coarse: 4, minStep: 0 }, async (t) => {
      calls.push(t);
      return f(t);
    });
    expect(r.best?.noiseLevel).toBe(gridBest);
    expect(new Set(calls).size).toBe(calls.length);
    expect(calls.length).toBeLessThanOrEqual(GRID.length / 2);
    expect(r.rounds[0]).toEqual([1, 15, 80, 300]);
  });

  it('is deterministic: the same results always ask for the same levels', () => {
    const probed = new Map([[1, 0.8], [15, 0.85], [65, 0.83], [300, 0.7]]);
    const a = nextNoiseLevels(GRID, probed, { coarse: 4, minStep: 0 });
    const b = nextNoiseLevels([...GRID].reverse(), new Map([...probed].reverse()), { coarse: 4, minStep: 0 });
    expect(b).toEqual(a);
  });
});
