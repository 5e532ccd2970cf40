import type { DatasetName } from '@ddae/contracts';

/** Another worker as its heartbeat row says (GET /api/workers shows the same). */
export interface PeerWorker {
  id: string;
  state: string;
  unhealthyReason: string | null;
  /** The data sets it could read at its last heartbeat. */
  datasets: readonly string[];
}

/** What this worker knows when a job needs a data set it cannot read. */
export interface MissingDatasetInput {
  dataset: DatasetName;
  workerId: string;
  /** This worker's DDAE_DATA_DIR (undefined: each data set's Debian path). */
  dataDir: string | undefined;
  /** What loading the data set here would fail with (a DatasetMissingError's message: the file and how to get it). */
  missing: string;
  /** The live workers (heard from within WORKER_STALE_MS, not stopped); this one may be among them. */
  workers: readonly PeerWorker[];
  /** How often this job was already handed back for this data set while a worker that has it sat idle. */
  idleHandBacks: number;
  /** How often it was handed back while every worker that has it was busy (its delay grows with it; 0 when unknown). */
  busyHandBacks?: number;
}

export type MissingDatasetDecision =
  /** Back to the queue without spending an attempt, offered again after delayMs; `counted`: an idle peer could have taken it (see idleHandBacks). */
  | { action: 'hand-back'; delayMs: number; counted: boolean; reason: string }
  /** Nobody can run it: fail the job at once (retrying cannot help). */
  | { action: 'fail'; reason: string };

/**
 * maxIdleHandBacks: a job handed back this often while a worker that reports the data set sat idle
 * fails (that worker heartbeats but does not take it: paused, or its report is wrong), so nothing
 * loops forever. idleDelayMs: the delay before it is offered again when such a worker is idle (it
 * should take it at once). busyDelayMs, doubled at each such hand-back up to maxBusyDelayMs: when
 * every such worker is busy (a pretraining run can take hours). Waiting for them is not a loop and
 * is not counted; the delay only bounds how often this worker looks at the job again (a claim in
 * Redis, nothing in Postgres): the job does not wait it out, a worker that has the data set wakes it
 * as soon as it is idle (parked-jobs.ts). The cap is how late a wake-up that was missed (that worker
 * was killed) is made up for. standAsideMs: after a hand-back to an idle worker, this worker fetches
 * no job for this long, so that the job, back in wait after idleDelayMs, is the idle worker's to
 * take rather than this one's again (both would be waiting for a job; either could get it).
 */
export const MISSING_DATASET_LIMITS = { maxIdleHandBacks: 20, idleDelayMs: 1_000, busyDelayMs: 10_000, maxBusyDelayMs: 300_000, standAsideMs: 3_000 } as const;

/** States in which a worker takes no more jobs. */
const NOT_TAKING = new Set(['stopping', 'stopped', 'unhealthy']);

/**
 * A job needs a data set this worker cannot read (it has others, or it would have refused to
 * start). The job is not at fault when another live worker has the data set: it is handed back,
 * unspent, for that worker, and this one stays healthy (it still serves its other data sets). Only
 * when no live, healthy worker reports the data set does the job fail, at once, saying how to fix it.
 *
 * Why a hand-back with a delay rather than never taking the job: all compute jobs share one BullMQ
 * queue and a BullMQ worker takes the next job of its queue, with no filter on what the job needs.
 * Avoiding the job altogether would take a queue per data set (`compute:<dataset>`), which renames
 * the queue every producer, the reconciler, the priorities across sweeps and the autoscaler's
 * metric rely on, for a case (a worker lacking a data set) that is a misconfiguration to fix, not a
 * steady state. The hand-back is decided before the job's row is claimed: it costs a claim in Redis
 * and a few reads, and writes nothing in Postgres (no `*.started` / `*.requeued` event, no attempt).
 */
export function missingDatasetDecision(input: MissingDatasetInput): MissingDatasetDecision {
  const { dataset, workerId } = input;
  const here = `worker ${workerId} (DDAE_DATA_DIR=${input.dataDir ?? 'unset: the Debian paths'})`;
  const able = input.workers.filter((w) => w.id !== workerId && w.unhealthyReason === null && !NOT_TAKING.has(w.state) && w.datasets.includes(dataset));
  if (able.length === 0) {
    return {
      action: 'fail',
      reason: `DatasetMissingError: no live worker can read data set ${dataset}: ${here} cannot and no other live worker reports it. ${input.missing} Or start a worker that has it.`,
    };
  }
  const idle = able.filter((w) => w.state === 'idle');
  const names = able.map((w) => `${w.id} (${w.state})`).join(', ');
  if (idle.length > 0 && input.idleHandBacks >= MISSING_DATASET_LIMITS.maxIdleHandBacks) {
    return {
      action: 'fail',
      reason: `DatasetMissingError: data set ${dataset}: ${here} cannot read it and handed this job back ${input.idleHandBacks} times while ${idle.map((w) => w.id).join(', ')} reported it and sat idle, but no worker took it: check that worker (is it paused, can it read ${dataset}?), or install ${dataset} here. ${input.missing}`,
    };
  }
  return {
    action: 'hand-back',
    delayMs: idle.length > 0 ? MISSING_DATASET_LIMITS.idleDelayMs : busyDelay(input.busyHandBacks ?? 0),
    counted: idle.length > 0,
    reason: `it cannot read data set ${dataset} (DDAE_DATA_DIR=${input.dataDir ?? 'unset'}); left for ${names}, which can`,
  };
}

/** The delay of a hand-back while every worker that has the data set is busy, after `n` such hand-backs of the job. */
export function busyDelay(n: number): number {
  const { busyDelayMs, maxBusyDelayMs } = MISSING_DATASET_LIMITS;
  return Math.min(maxBusyDelayMs, busyDelayMs * 2 ** Math.min(Math.max(0, n), 30));
}
