import { Prisma, type PrismaClient } from '../generated/client';
import { appendEvent } from './event.repository';
import type { Db } from './types';

/**
 * Sweeps still waiting on a shared baseline (QUEUED or RUNNING): the only ones its events go to,
 * so that a sweep that has ended keeps its final status as its last event.
 */
export async function sweepsWaitingOn(db: Db, baselineId: string): Promise<string[]> {
  const rows = await db.sweepBaseline.findMany({ where: { baselineId, sweep: { status: { in: ['QUEUED', 'RUNNING'] } } }, select: { sweepId: true } });
  return rows.map((r) => r.sweepId);
}

/**
 * Hands RUNNING rows back to the queue (status QUEUED, `reason` as their error) where `heldBy`, a
 * condition on their `worker_id`, holds; each row gets its `run.requeued`, `probe.requeued` or
 * `baseline.requeued` event, as a failed attempt does. One transaction.
 * @returns how many rows went back to QUEUED.
 */
export async function requeueHeld(prisma: PrismaClient, heldBy: Prisma.Sql, reason: string): Promise<number> {
  return prisma.$transaction(async (tx) => {
    const runs = await tx.$queryRaw<{ id: string; sweep_id: string; key: string }[]>`
      UPDATE runs SET status = 'QUEUED', error = ${reason}, updated_at = now()
      WHERE status = 'RUNNING' AND ${heldBy} RETURNING id, sweep_id, key`;
    const probes = await tx.$queryRaw<{ id: string; sweep_id: string; run_id: string; noise_level: number }[]>`
      UPDATE probe_tasks SET status = 'QUEUED', error = ${reason}, updated_at = now()
      WHERE status = 'RUNNING' AND ${heldBy} RETURNING id, sweep_id, run_id, noise_level`;
    const baselines = await tx.$queryRaw<{ id: string; kind: string; dataset: string }[]>`
      UPDATE baselines SET status = 'QUEUED', error = ${reason}, updated_at = now()
      WHERE status = 'RUNNING' AND ${heldBy} RETURNING id, kind, dataset`;
    for (const r of runs) await appendEvent(tx, r.sweep_id, 'run.requeued', { runId: r.id, run: r.key, error: reason });
    for (const p of probes) await appendEvent(tx, p.sweep_id, 'probe.requeued', { probeTaskId: p.id, runId: p.run_id, noiseLevel: p.noise_level, error: reason });
    for (const b of baselines) {
      for (const sweepId of await sweepsWaitingOn(tx, b.id)) await appendEvent(tx, sweepId, 'baseline.requeued', { baselineId: b.id, kind: b.kind, dataset: b.dataset, error: reason });
    }
    return runs.length + probes.length + baselines.length;
  });
}
