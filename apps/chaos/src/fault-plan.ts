/** mulberry32: a small seeded generator; the same seed gives the same faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type PlannedFault =
  | {
      kind: 'kill-worker';
      /** Seconds after the previous fault (the first: after the sweep's first checkpoint). */
      afterS: number;
      /** Which live worker, as a fraction of the live ones (resolved when it happens). */
      pick: number;
      /** Seconds until the killed worker is started again. */
      restartAfterS: number;
    }
  | {
      kind: 'restart-redis';
      afterS: number;
      /** SIGTERM (a clean shutdown) or SIGKILL (a crash); either way it comes back empty. */
      signal: 'SIGTERM' | 'SIGKILL';
      /** Seconds Redis stays down. */
      downS: number;
    };

const uniform = (random: () => number, lo: number, hi: number) => Math.round((lo + (hi - lo) * random()) * 10) / 10;

/**
 * The faults of one chaos run, drawn from the seed: kinds shuffled with at least one worker kill
 * and one Redis restart (when there are two or more), moments 6..18 s apart, workers back after
 * 1..5 s, Redis down for 0.5..3 s.
 */
export function planFaults(count: number, seed: number): PlannedFault[] {
  const random = seededRandom(seed);
  const kinds: PlannedFault['kind'][] = Array.from({ length: count }, (_, i) => (i === 0 ? 'kill-worker' : i === 1 ? 'restart-redis' : random() < 0.6 ? 'kill-worker' : 'restart-redis'));
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
  }
  return kinds.map((kind) =>
    kind === 'kill-worker'
      ? { kind, afterS: uniform(random, 6, 18), pick: random(), restartAfterS: uniform(random, 1, 5) }
      : { kind, afterS: uniform(random, 6, 18), signal: random() < 0.5 ? 'SIGTERM' : 'SIGKILL', downS: uniform(random, 0.5, 3) },
  );
}
