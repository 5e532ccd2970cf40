import { ApiClient } from '@ddae/api-client';
import { cpus, hostname } from 'node:os';
import { waitFor } from '@ddae/testing';
import { startDeployment, type Deployment } from './deployment';
import { planFaults, type PlannedFault } from './fault-plan';
import { heldBy, readLedger, resumedSince, workDone, type Expected } from './ledger';
import { parseOptions, USAGE, UsageError, type ChaosOptions } from './options';

/** One fault as it happened. */
interface FaultRecord {
  kind: PlannedFault['kind'];
  /** Seconds since the sweep was submitted. */
  atS: number;
  at: string;
  detail: string;
  /** Seconds until the sweep's work counter rose again (null: it never did). */
  progressAfterS: number | null;
  /** Kills of a busy worker: seconds until its task was claimed again or finished. */
  resumedAfterS?: number | null;
  /** Internal: what to watch. */
  started: number;
  victimTask?: { table: string; id: string } | null;
}

const LAYERS = ['out_2', 'out_4'];
const TIMESTEPS = [10, 100];

function sweepSpec(options: ChaosOptions) {
  return {
    name: `chaos-seed-${options.seed}`,
    dataset: 'fashion-mnist',
    models: [{ method: 'ddpm', unet: 'tiny' }],
    pretrain: { steps: options.steps, batchSize: 8, learningRate: 0.001, checkpointEvery: 8, trainSize: 256, seeds: Array.from({ length: options.runs }, (_, i) => i) },
    probe: { layers: LAYERS, timesteps: TIMESTEPS, epochs: 3, batchSize: 64, learningRate: 0.01, trainSize: 200, testSize: 100 },
    baselines: ['pixels'],
  };
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const seconds = (ms: number) => Math.round(ms / 100) / 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function sweepStatus(d: Deployment, id: string): Promise<string> {
  const row = await d.db.prisma.sweep.findUnique({ where: { id }, select: { status: true } });
  return row?.status ?? 'MISSING';
}

const TERMINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

async function run(options: ChaosOptions): Promise<number> {
  const wallStart = Date.now();
  const plan = planFaults(options.faults, options.seed);
  say(`chaos: seed ${options.seed}, ${options.workers} workers, ${options.runs} runs x ${options.steps} steps, ${plan.length} faults planned`);
  const d = await startDeployment({ workers: options.workers, verbose: options.verbose });
  say(`chaos: database ${d.db.name}, own redis-server on port ${d.redis.port}, API ${d.base}`);
  const pendingRestarts = new Set<Promise<void>>();
  let exitCode = 1;
  try {
    const body = await new ApiClient(d.base, { token: d.token }).submitSweep({ json: sweepSpec(options) });
    if (!body.created || body.queued !== true) throw new Error(`submitting the sweep failed: ${JSON.stringify(body)}`);
    const sweepId = body.id;
    const submitted = Date.now();
    say(`chaos: sweep ${sweepId} submitted`);

    // Progress monitor: every 250 ms, the work counter; each fault's recovery is read off it.
    const faults: FaultRecord[] = [];
    let last = -1;
    let done = false;
    const monitor = (async () => {
      while (!done) {
        const now = Date.now();
        const work = await workDone(d.db.prisma, sweepId).catch(() => last);
        if (last >= 0 && work > last) {
          for (const f of faults) if (f.progressAfterS === null && now > f.started) f.progressAfterS = seconds(now - f.started);
        }
        last = Math.max(work, 0);
        for (const f of faults) {
          if (f.victimTask && f.resumedAfterS === null && (await resumedSince(d.db.prisma, f.victimTask, new Date(f.started)).catch(() => false))) f.resumedAfterS = seconds(now - f.started);
        }
        await sleep(250);
      }
    })();

    // Faults start once there is work to lose: the first checkpoint.
    await waitFor('the sweep\'s first checkpoint', async () => ((await d.db.prisma.checkpoint.count()) > 0 ? true : undefined), { timeoutMs: 180_000, intervalMs: 250 });
    const deadline = submitted + options.timeout * 1000;
    for (const fault of plan) {
      const at = Date.now() + fault.afterS * 1000;
      while (Date.now() < at && !TERMINAL.includes(await sweepStatus(d, sweepId))) await sleep(200);
      if (TERMINAL.includes(await sweepStatus(d, sweepId)) || Date.now() > deadline) break;
      const started = Date.now();
      const record: FaultRecord = { kind: fault.kind, atS: seconds(started - submitted), at: new Date(started).toISOString(), detail: '', progressAfterS: null, started };
      if (fault.kind === 'kill-worker') {
        const alive = d.workers.map((w, slot) => ({ w, slot })).filter(({ w }) => w.child.exitCode === null && w.child.signalCode === null);
        if (alive.length === 0) continue;
        const { w, slot } = alive[Math.min(alive.length - 1, Math.floor(fault.pick * alive.length))];
        const victimTask = await heldBy(d.db.prisma, d.workerId(slot));
        w.child.kill('SIGKILL');
        await w.exited;
        record.detail = `kill -9 ${d.workerId(slot)} (pid ${w.child.pid}${victimTask ? `, holding ${victimTask.table} ${victimTask.id.slice(0, 8)}` : ', idle'}), back in ${fault.restartAfterS} s`;
        if (victimTask) {
          record.victimTask = victimTask;
          record.resumedAfterS = null;
        }
        const restart = sleep(fault.restartAfterS * 1000).then(() => d.startWorker(slot));
        pendingRestarts.add(restart);
        void restart.finally(() => pendingRestarts.delete(restart));
      } else {
        await d.redis.stop(fault.signal);
        await sleep(fault.downS * 1000);
        await d.redis.start();
        record.detail = `redis-server ${fault.signal === 'SIGKILL' ? 'killed (-9)' : 'shut down (SIGTERM)'}, down ${seconds(Date.now() - started)} s, back empty`;
      }
      faults.push(record);
      say(`chaos: +${record.atS}s ${record.detail}`);
    }

    const remaining = Math.max(1_000, deadline - Date.now());
    await waitFor(`sweep ${sweepId} to finish`, async () => (TERMINAL.includes(await sweepStatus(d, sweepId)) ? true : undefined), { timeoutMs: remaining, intervalMs: 500 }).catch((error: Error) => say(`chaos: ${error.message.split('\n')[0]}`));
    await Promise.all(pendingRestarts);
    await sleep(500);
    done = true;
    await monitor;

    const status = await sweepStatus(d, sweepId);
    const expected: Expected = { runs: options.runs, timesteps: TIMESTEPS, layers: LAYERS, baselines: 1 };
    const ledger = await readLedger(d.db.prisma, sweepId, expected);
    const recoveries = faults.map((f) => f.progressAfterS ?? seconds(Date.now() - f.started));
    const resumes = faults.filter((f) => f.victimTask).map((f) => f.resumedAfterS ?? seconds(Date.now() - f.started));
    const summary = {
      jobsLost: ledger.jobsLost,
      duplicateResults: ledger.duplicateResults,
      recoverySeconds: recoveries.length ? Math.max(...recoveries) : 0,
      longestResumeSeconds: resumes.length ? Math.max(...resumes) : null,
      sweepStatus: status,
      expectedCells: ledger.expectedCells,
      resultCells: ledger.resultCells,
      cellsRecomputed: ledger.cellsRecomputed,
      extraAttempts: ledger.extraAttempts,
      runsSucceeded: ledger.runsSucceeded,
      checkpoints: ledger.checkpoints,
      faultsInjected: faults.length,
      workerKills: faults.filter((f) => f.kind === 'kill-worker').length,
      redisRestarts: faults.filter((f) => f.kind === 'restart-redis').length,
      faults: faults.map((f) => ({ kind: f.kind, at: f.at, atS: f.atS, detail: f.detail, progressAfterS: f.progressAfterS, ...(f.victimTask ? { resumedAfterS: f.resumedAfterS } : {}) })),
      sweepSeconds: seconds(Date.now() - submitted),
      wallSeconds: seconds(Date.now() - wallStart),
      workers: options.workers,
      runs: options.runs,
      steps: options.steps,
      seed: options.seed,
      machine: `${hostname()}, ${cpus().length} vCPU`,
      date: new Date().toISOString(),
    };
    say(`chaos: sweep ${status} in ${summary.sweepSeconds} s; ${ledger.resultCells}/${ledger.expectedCells} cells, ${ledger.runsSucceeded}/${options.runs} runs, ${ledger.checkpoints} checkpoints`);
    for (const f of summary.faults) say(`chaos:   +${f.atS}s ${f.kind}: progress again after ${f.progressAfterS ?? 'never'} s${'resumedAfterS' in f ? `, its task resumed after ${f.resumedAfterS ?? 'never'} s` : ''}`);
    say(`chaos: jobs lost ${summary.jobsLost}, duplicate results ${summary.duplicateResults}, longest recovery ${summary.recoverySeconds} s, cells recomputed ${summary.cellsRecomputed}, extra attempts ${summary.extraAttempts}`);
    exitCode = summary.jobsLost === 0 && summary.duplicateResults === 0 && status === 'SUCCEEDED' ? 0 : 1;
    if (exitCode !== 0) say(`chaos: FAILED. Last output of the processes:\n${d.workers.map((w, i) => `--- ${d.workerId(i)}\n${w.output().slice(-1500)}`).join('\n')}`);
    if (options.json) say(JSON.stringify(summary));
  } finally {
    await Promise.all(pendingRestarts);
    await d.stop().catch((error: Error) => say(`chaos: cleanup failed: ${error.message}`));
  }
  return exitCode;
}

async function main(): Promise<void> {
  let options: ChaosOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`chaos: ${error.message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (options === 'help') {
    say(USAGE);
    process.exit(0);
  }
  const code = await run(options);
  // The pg pool's idle timeout would hold the process for seconds.
  process.exit(code);
}

main().catch((error: unknown) => {
  process.stderr.write(`chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
