import { busyDelay, MISSING_DATASET_LIMITS, missingDatasetDecision, type MissingDatasetInput, type PeerWorker } from './missing-dataset';

const peer = (id: string, datasets: string[], state = 'idle', unhealthyReason: string | null = null): PeerWorker => ({ id, state, unhealthyReason, datasets });
const MISSING = 'Fashion-MNIST file not found: /data/a/fashion-mnist/train-images-idx3-ubyte.gz. Install it with `apt-get install -y dataset-fashion-mnist` (...).';
const input = (workers: PeerWorker[], idleHandBacks = 0, busyHandBacks = 0): MissingDatasetInput => ({ dataset: 'fashion-mnist', workerId: 'a', dataDir: '/data/a', missing: MISSING, workers, idleHandBacks, busyHandBacks });
const decide = (workers: PeerWorker[], idleHandBacks = 0, busyHandBacks = 0) => missingDatasetDecision(input(workers, idleHandBacks, busyHandBacks));

describe('a job needing a data set this worker lacks', () => {
  it('is handed back, soon, when another live worker that has it is idle; the hand-back counts towards the bound', () => {
    const d = decide([peer('a', ['mnist']), peer('b', ['fashion-mnist', 'mnist'])]);
    expect(d).toEqual({
      action: 'hand-back',
      delayMs: MISSING_DATASET_LIMITS.idleDelayMs,
      counted: true,
      reason: 'it cannot read data set fashion-mnist (DDAE_DATA_DIR=/data/a); left for b (idle), which can',
    });
  });

  it('is handed back, later and uncounted, when every worker that has it is busy: waiting for them is no loop', () => {
    const d = decide([peer('b', ['fashion-mnist'], 'busy'), peer('c', ['fashion-mnist'], 'starting')], 1_000);
    expect(d).toMatchObject({ action: 'hand-back', delayMs: MISSING_DATASET_LIMITS.busyDelayMs, counted: false });
    expect(d.reason).toMatch(/left for b \(busy\), c \(starting\), which can$/);
    expect(MISSING_DATASET_LIMITS.busyDelayMs).toBeGreaterThan(MISSING_DATASET_LIMITS.idleDelayMs);
  });

  it('comes back to this worker less and less often while they stay busy: the delay doubles at each such hand-back, up to its cap', () => {
    const busy = [peer('b', ['fashion-mnist'], 'busy')];
    const delays = [0, 1, 2, 3, 4, 5, 6, 50].map((n) => decide(busy, 0, n)).map((d) => (d.action === 'hand-back' ? d.delayMs : NaN));
    expect(delays).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
    expect(delays.at(-1)).toBe(MISSING_DATASET_LIMITS.maxBusyDelayMs);
    // An idle worker that has it: soon again, however often it waited for busy ones before.
    expect(decide([peer('b', ['fashion-mnist'])], 0, 50)).toMatchObject({ action: 'hand-back', delayMs: MISSING_DATASET_LIMITS.idleDelayMs, counted: true });
    expect(busyDelay(-1)).toBe(MISSING_DATASET_LIMITS.busyDelayMs);
    expect(busyDelay(10_000)).toBe(MISSING_DATASET_LIMITS.maxBusyDelayMs);
  });

  it('fails at once when no live, healthy, consuming worker reports it, naming this worker, its data directory and the fix', () => {
    const others = [
      peer('a', ['fashion-mnist']), // itself: its own (stale) report does not count
      peer('b', ['mnist']),
      peer('c', ['fashion-mnist'], 'unhealthy', 'ARTIFACT_DIR /x cannot be written'),
      peer('d', ['fashion-mnist'], 'stopping'),
      peer('e', ['fashion-mnist'], 'idle', 'the disk is full'),
    ];
    for (const workers of [[], others]) {
      const d = decide(workers);
      expect(d.action).toBe('fail');
      expect(d.reason).toMatch(/^DatasetMissingError: no live worker can read data set fashion-mnist: worker a \(DDAE_DATA_DIR=\/data\/a\) cannot and no other live worker reports it\. /);
      expect(d.reason).toContain('apt-get install -y dataset-fashion-mnist');
      expect(d.reason).toMatch(/Or start a worker that has it\.$/);
    }
    expect(missingDatasetDecision({ ...input([]), dataDir: undefined }).reason).toContain('(DDAE_DATA_DIR=unset: the Debian paths)');
  });

  it(`fails after ${MISSING_DATASET_LIMITS.maxIdleHandBacks} hand-backs while a worker that has it sat idle: nothing loops forever`, () => {
    const idle = [peer('b', ['fashion-mnist'])];
    expect(decide(idle, MISSING_DATASET_LIMITS.maxIdleHandBacks - 1).action).toBe('hand-back');
    const d = decide(idle, MISSING_DATASET_LIMITS.maxIdleHandBacks);
    expect(d.action).toBe('fail');
    expect(d.reason).toMatch(/^DatasetMissingError: data set fashion-mnist: worker a .* handed this job back 20 times while b reported it and sat idle, but no worker took it: /);
    // Busy workers that have it keep it waiting, however often it came back.
    expect(decide([peer('b', ['fashion-mnist'], 'busy')], 10 * MISSING_DATASET_LIMITS.maxIdleHandBacks).action).toBe('hand-back');
  });
});
