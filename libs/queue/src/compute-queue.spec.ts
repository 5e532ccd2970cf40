import { JOB_NAMES } from '@ddae/contracts';
import { JOB_PRIORITY, jobIdOf, jobPriority } from './compute-queue';
import { withTimeout } from './connection';

describe('compute queue', () => {
  const id = '3f0c1d9e-8f7a-4b6c-9d2e-1a2b3c4d5e6f';

  it('derives deterministic job ids that BullMQ accepts (no ":", not all digits)', () => {
    const ids = [
      jobIdOf({ name: JOB_NAMES.pretrain, data: { v: 1, runId: id } }),
      jobIdOf({ name: JOB_NAMES.probe, data: { v: 1, probeTaskId: id } }),
      jobIdOf({ name: JOB_NAMES.baseline, data: { v: 1, baselineId: id } }),
    ];
    expect(ids).toEqual([`pretrain-${id}`, `probe-${id}`, `baseline-${id}`]);
    for (const jobId of ids) {
      expect(jobId).not.toContain(':');
      expect(jobId).not.toMatch(/^\d+$/);
    }
  });

  it('runs baselines and probes before new pretraining (lower number first)', () => {
    expect(JOB_PRIORITY.baseline).toBeLessThan(JOB_PRIORITY.pretrain);
    expect(JOB_PRIORITY.probe).toBeLessThan(JOB_PRIORITY.pretrain);
  });

  it('bands priorities by sweep priority, then orders pretraining by run position', () => {
    expect(jobPriority('pretrain', 1, 500)).toBeLessThan(jobPriority('baseline', 2));
    expect(jobPriority('pretrain', 5, 0)).toBeLessThan(jobPriority('pretrain', 5, 1));
    expect(jobPriority('probe', 5)).toBeLessThan(jobPriority('pretrain', 5, 0));
    // Out-of-range input is clamped into the valid BullMQ range.
    expect(jobPriority('pretrain', 42, 1e9)).toBe(9000 + 10 + 980);
  });

  it('bounds a hanging promise and names it', async () => {
    await expect(withTimeout(new Promise(() => undefined), 20, 'worker close')).rejects.toThrow('worker close did not finish within 20 ms');
    await expect(withTimeout(Promise.resolve(7), 20, 'x')).resolves.toBe(7);
  });
});
