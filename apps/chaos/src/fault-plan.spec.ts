import { planFaults, seededRandom } from './fault-plan';

describe('the fault plan', () => {
  it('is the same for the same seed and differs between seeds', () => {
    expect(planFaults(6, 42)).toEqual(planFaults(6, 42));
    expect(planFaults(6, 42)).not.toEqual(planFaults(6, 43));
    expect(seededRandom(5)()).toBe(seededRandom(5)());
  });

  it('kills a worker and restarts Redis at least once each, within the documented ranges', () => {
    for (let seed = 0; seed < 50; seed++) {
      const plan = planFaults(5, seed);
      expect(plan).toHaveLength(5);
      expect(plan.some((f) => f.kind === 'kill-worker')).toBe(true);
      expect(plan.some((f) => f.kind === 'restart-redis')).toBe(true);
      for (const f of plan) {
        expect(f.afterS).toBeGreaterThanOrEqual(6);
        expect(f.afterS).toBeLessThanOrEqual(18);
        if (f.kind === 'kill-worker') {
          expect(f.pick).toBeGreaterThanOrEqual(0);
          expect(f.pick).toBeLessThan(1);
          expect(f.restartAfterS).toBeGreaterThanOrEqual(1);
          expect(f.restartAfterS).toBeLessThanOrEqual(5);
        } else {
          expect(['SIGTERM', 'SIGKILL']).toContain(f.signal);
          expect(f.downS).toBeGreaterThanOrEqual(0.5);
          expect(f.downS).toBeLessThanOrEqual(3);
        }
      }
    }
    expect(planFaults(0, 1)).toEqual([]);
  });
});
