import type { PrismaClient } from '@ddae/db';

/** What the sweep should produce: one result per (run, noise level, layer), one per baseline. */
export interface Expected {
  runs: number;
  timesteps: number[];
  layers: string[];
  baselines: number;
}

export interface Ledger {
  expectedCells: number;
  resultCells: number;
  /** Expected cells with no result row, plus baselines with no accuracy. */
  jobsLost: number;
  /** Result rows beyond the first per natural key (run, layer, noise level, protocol), plus final checkpoints beyond one per run. */
  duplicateResults: number;
  /** Probe tasks or runs that succeeded more than once (a finished cell computed again): not wrong, but wasted. */
  cellsRecomputed: number;
  runsSucceeded: number;
  checkpoints: number;
  /** Attempts spent beyond one per task (runs, probe tasks, baselines). */
  extraAttempts: number;
}

const n = (v: unknown) => Number(v ?? 0);

/** The sweep's books, from Postgres alone. */
export async function readLedger(prisma: PrismaClient, sweepId: string, expected: Expected): Promise<Ledger> {
  const one = async (sql: string, ...params: unknown[]) => n(((await prisma.$queryRawUnsafe<{ v: unknown }[]>(sql, ...params))[0] ?? {}).v);
  const runs = await one(`SELECT count(*) v FROM runs WHERE sweep_id = $1::uuid AND NOT untrained`, sweepId);
  const perRun = expected.timesteps.length * expected.layers.length;
  const missingInPlannedRuns = await one(
    `SELECT count(*) v FROM runs r
       CROSS JOIN unnest($2::float8[]) t(noise) CROSS JOIN unnest($3::text[]) l(layer)
      WHERE r.sweep_id = $1::uuid AND NOT r.untrained
        AND NOT EXISTS (SELECT 1 FROM probe_results p WHERE p.run_id = r.id AND p.noise_level = t.noise AND p.layer = l.layer)`,
    sweepId,
    expected.timesteps,
    expected.layers,
  );
  const baselinesDone = await one(
    `SELECT count(*) v FROM sweep_baselines sb JOIN baselines b ON b.id = sb.baseline_id WHERE sb.sweep_id = $1::uuid AND b.accuracy IS NOT NULL`,
    sweepId,
  );
  const expectedCells = expected.runs * perRun;
  const lostCells = Math.max(0, expected.runs - runs) * perRun + missingInPlannedRuns;
  const duplicateResults =
    (await one(`SELECT coalesce(sum(c - 1), 0) v FROM (SELECT count(*) c FROM probe_results WHERE sweep_id = $1::uuid GROUP BY run_id, layer, noise_level, protocol_key HAVING count(*) > 1) d`, sweepId)) +
    (await one(`SELECT coalesce(sum(c - 1), 0) v FROM (SELECT count(*) c FROM checkpoints k JOIN runs r ON r.id = k.run_id WHERE r.sweep_id = $1::uuid AND k.final GROUP BY k.run_id HAVING count(*) > 1) d`, sweepId));
  const cellsRecomputed =
    (await one(`SELECT count(*) - count(DISTINCT data->>'probeTaskId') v FROM sweep_events WHERE sweep_id = $1::uuid AND type = 'probe.succeeded'`, sweepId)) +
    (await one(`SELECT count(*) - count(DISTINCT data->>'runId') v FROM sweep_events WHERE sweep_id = $1::uuid AND type = 'run.succeeded'`, sweepId));
  const extraAttempts = await one(
    `SELECT coalesce(sum(greatest(attempts - 1, 0)), 0) v FROM (
       SELECT attempts FROM runs WHERE sweep_id = $1::uuid
       UNION ALL SELECT attempts FROM probe_tasks WHERE sweep_id = $1::uuid
       UNION ALL SELECT b.attempts FROM baselines b JOIN sweep_baselines sb ON sb.baseline_id = b.id WHERE sb.sweep_id = $1::uuid) a`,
    sweepId,
  );
  return {
    expectedCells,
    resultCells: expectedCells - lostCells,
    jobsLost: lostCells + Math.max(0, expected.baselines - baselinesDone),
    duplicateResults,
    cellsRecomputed,
    runsSucceeded: await one(`SELECT count(*) v FROM runs WHERE sweep_id = $1::uuid AND status = 'SUCCEEDED'`, sweepId),
    checkpoints: await one(`SELECT count(*) v FROM checkpoints k JOIN runs r ON r.id = k.run_id WHERE r.sweep_id = $1::uuid`, sweepId),
    extraAttempts,
  };
}

/**
 * A number that grows whenever the sweep does work: training steps, checkpoints, result rows and
 * finished tasks. Steps can fall back when a run resumes from a checkpoint; progress is any rise.
 */
export async function workDone(prisma: PrismaClient, sweepId: string): Promise<number> {
  const rows = await prisma.$queryRawUnsafe<{ v: unknown }[]>(
    `SELECT (SELECT coalesce(sum(steps_done), 0) FROM runs WHERE sweep_id = $1::uuid)
          + (SELECT count(*) FROM checkpoints k JOIN runs r ON r.id = k.run_id WHERE r.sweep_id = $1::uuid)
          + (SELECT count(*) FROM probe_results WHERE sweep_id = $1::uuid)
          + (SELECT count(*) FROM probe_tasks WHERE sweep_id = $1::uuid AND status = 'SUCCEEDED')
          + (SELECT count(*) FROM runs WHERE sweep_id = $1::uuid AND status = 'SUCCEEDED') v`,
    sweepId,
  );
  return n(rows[0]?.v);
}

/** The task a worker holds in Postgres right now (a kill's victim), if any. */
export async function heldBy(prisma: PrismaClient, workerId: string): Promise<{ table: 'runs' | 'probe_tasks' | 'baselines'; id: string } | null> {
  for (const table of ['runs', 'probe_tasks', 'baselines'] as const) {
    const rows = await prisma.$queryRawUnsafe<{ id: string }[]>(`SELECT id::text id FROM ${table} WHERE status = 'RUNNING' AND worker_id = $1 LIMIT 1`, workerId);
    if (rows[0]) return { table, id: rows[0].id };
  }
  return null;
}

/** Whether a task was claimed again (or finished) after `since`: the killed worker's work resumed. */
export async function resumedSince(prisma: PrismaClient, task: { table: string; id: string }, since: Date): Promise<boolean> {
  const rows = await prisma.$queryRawUnsafe<{ v: boolean }[]>(
    `SELECT (status = 'SUCCEEDED' OR (status = 'RUNNING' AND started_at > $2)) v FROM ${task.table} WHERE id = $1::uuid`,
    task.id,
    since,
  );
  return Boolean(rows[0]?.v);
}
