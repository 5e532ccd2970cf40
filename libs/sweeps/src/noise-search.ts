/**
 * Coarse-to-fine search for the best noise level of a run, over a grid of candidate levels.
 *
 * Accuracy against noise level is single-peaked (REFERENCE.md), so if the best level probed so far
 * has probed neighbours l < b < r, the grid's best lies between l and r. Each round probes the
 * midpoint of each side of the bracket that is still wider than one grid step (and than
 * `minStep`); the search ends when both sides are adjacent. Pure and deterministic: the next levels
 * are a function of the grid and the results only, so a repeated decision (a retried job, the
 * reconciler) asks for the same levels.
 */

export interface NoiseSearchOptions {
  /** Levels of the first round, evenly spread over the grid (both ends included). */
  coarse: number;
  /** Stop refining a side once its probed neighbour is within this distance of the best (noise-level units); 0: adjacent in the grid. */
  minStep: number;
}

export interface NoiseSearchStep {
  /** Levels to probe next (empty when the search is done). */
  next: number[];
  /** True when nothing is left to probe. */
  done: boolean;
  /** The best probed level so far (lowest level on ties), and its accuracy. */
  best: { noiseLevel: number; accuracy: number } | null;
}

/** Sorted distinct levels of a grid. */
export function searchGrid(levels: readonly number[]): number[] {
  return [...new Set(levels)].sort((a, b) => a - b);
}

/** The first round: `coarse` grid indices spread evenly from the first to the last level. */
export function coarseLevels(levels: readonly number[], coarse: number): number[] {
  const grid = searchGrid(levels);
  const n = grid.length;
  if (n === 0) return [];
  if (coarse >= n) return grid;
  const picked = new Set<number>();
  for (let k = 0; k < coarse; k++) picked.add(Math.round((k * (n - 1)) / (coarse - 1)));
  return [...picked].sort((a, b) => a - b).map((i) => grid[i]);
}

/**
 * The next step of the search, given the best accuracy of every probed level (over its layers).
 * Results at levels outside the grid are ignored.
 */
export function nextNoiseLevels(levels: readonly number[], probed: ReadonlyMap<number, number>, opts: NoiseSearchOptions): NoiseSearchStep {
  const grid = searchGrid(levels);
  const seen = grid.map((level, index) => ({ level, index, accuracy: probed.get(level) })).filter((x): x is { level: number; index: number; accuracy: number } => x.accuracy !== undefined);
  if (seen.length === 0) {
    const next = coarseLevels(grid, opts.coarse);
    return { next, done: next.length === 0, best: null };
  }
  let best = seen[0];
  for (const s of seen) if (s.accuracy > best.accuracy) best = s;
  const at = seen.indexOf(best);
  const left = seen[at - 1];
  const right = seen[at + 1];
  const next: number[] = [];
  const split = (from: number, to: number): void => {
    if (to - from <= 1) return;
    if (Math.abs(grid[to] - grid[from]) <= opts.minStep) return;
    next.push(grid[Math.floor((from + to) / 2)]);
  };
  if (left) split(left.index, best.index);
  else if (best.index > 0) split(-1, best.index); // never happens after a coarse round, kept for partial inputs
  if (right) split(best.index, right.index);
  else if (best.index < grid.length - 1) split(best.index, grid.length);
  const fresh = next.filter((l) => l !== undefined && !probed.has(l));
  return { next: fresh, done: fresh.length === 0, best: { noiseLevel: best.level, accuracy: best.accuracy } };
}

/**
 * Runs a whole search against a measurement function (the CLI's comparison with the full grid):
 * `measure` is called once per level, round by round, levels of a round in ascending order.
 */
export async function runNoiseSearch(
  levels: readonly number[],
  opts: NoiseSearchOptions,
  measure: (noiseLevel: number) => Promise<number>,
): Promise<{ probed: Map<number, number>; rounds: number[][]; best: { noiseLevel: number; accuracy: number } | null }> {
  const probed = new Map<number, number>();
  const rounds: number[][] = [];
  for (;;) {
    const step = nextNoiseLevels(levels, probed, opts);
    if (step.done || step.next.length === 0) return { probed, rounds, best: step.best };
    rounds.push(step.next);
    for (const level of step.next) probed.set(level, await measure(level));
  }
}
