import { probeProtocolSchema, protocolAtBudget, protocolKey, type ProbeProtocol } from '@ddae/contracts';
import type { Prisma, PrismaClient, ProbeTask } from '../generated/client';
import { THROTTLED, underConcurrencyCap, type Claimant } from './types';
import { appendEvent, appendEventAlone } from './event.repository';
import { lockModelSummaries, refreshSummaries } from './summary';

export interface LayerResult {
  layer: string;
  /** The label budget it was trained on (a count in total, class-balanced); absent: all. */
  labels?: number;
  accuracy: number;
  trainAccuracy?: number;
  featureDim: number;
}

/**
 * What follows a complete round of a run's probe tasks (an adaptive noise search): given the best
 * accuracy of every probed noise level, the levels to probe next (none: the search is done).
 */
export type FollowUp = (probed: ReadonlyMap<number, number>) => { next: number[]; best: { noiseLevel: number; accuracy: number } | null };

/**
 * Fine-tuning at the best cell ("probe to choose, fine-tune to deploy"): once a run's linear probes
 * are done (every task of its protocol succeeded and its noise search, if any, asks for nothing
 * more), one task of this protocol at the run's best linear cell (largest budget; ties: lower
 * noise level, then layer name).
 */
export interface FinetuneFollowUp {
  protocol: ProbeProtocol;
  protocolKey: string;
  /** The task's budgets ([n]); absent: all. */
  labels?: (number | 'all')[];
}

export class ProbeRepository {
  constructor(private readonly prisma: PrismaClient) {}

  findById(id: string): Promise<ProbeTask | null> {
    return this.prisma.probeTask.findUnique({ where: { id } });
  }

  /** The run's probe tasks still to do (enqueued once its final checkpoint exists). */
  openTasksOfRun(runId: string): Promise<ProbeTask[]> {
    return this.prisma.probeTask.findMany({ where: { runId, status: { in: ['QUEUED', 'RUNNING'] } }, orderBy: { noiseLevel: 'asc' } });
  }

  async claim(id: string, by: Claimant): Promise<ProbeTask | null | typeof THROTTLED> {
    const claimed = await this.prisma.$transaction(async (tx) => {
      const row = await tx.probeTask.findUnique({ where: { id }, select: { sweepId: true } });
      if (!row) return 0;
      if (!(await underConcurrencyCap(tx, row.sweepId, id))) return THROTTLED;
      const { count } = await tx.probeTask.updateMany({
        // A paused sweep starts nothing new.
        where: { id, status: { in: ['QUEUED', 'RUNNING'] }, sweep: { pausedAt: null } },
        data: { status: 'RUNNING', attempts: { increment: 1 }, workerId: by.workerId, startedAt: new Date(), error: null },
      });
      return count;
    });
    if (claimed === THROTTLED) return THROTTLED;
    if (claimed !== 1) return null;
    const task = await this.findById(id);
    if (task) await appendEventAlone(this.prisma, task.sweepId, 'probe.started', { probeTaskId: id, runId: task.runId, noiseLevel: task.noiseLevel, attempt: task.attempts, workerId: by.workerId });
    return task;
  }

  /**
   * Writes every layer's accuracy and marks the task SUCCEEDED, in ONE transaction. Results are
   * upserts on (checkpoint, layer, noise level, protocol): a retried job converges to the same rows.
   * The leaderboard's summary rows of the run's model (its best, its cells at this noise level) are
   * recomputed in the same transaction (see ./summary).
   */
  async complete(
    task: ProbeTask,
    context: { checkpointId: string; dataset: string; method: string; untrained: boolean; backend: string; device?: string; workerId: string },
    results: LayerResult[],
    follow?: FollowUp,
    finetune?: FinetuneFollowUp,
  ): Promise<{ createdTaskIds: string[] }> {
    // A fine-tuning task is never a round of the search, and nothing follows it.
    if ((task.protocol as { probe?: string }).probe === 'finetune') {
      follow = undefined;
      finetune = undefined;
    }
    return this.prisma.$transaction(async (tx) => {
      // Completions of one run's tasks serialise on the run row, so that exactly one of them sees
      // its round complete and decides what follows.
      if (follow || finetune) await tx.$queryRaw`SELECT id FROM runs WHERE id = ${task.runId}::uuid FOR UPDATE`;
      const [run] = await tx.$queryRaw<{ model_name: string }[]>`SELECT model_name FROM runs WHERE id = ${task.runId}::uuid`;
      if (run) await lockModelSummaries(tx, task.sweepId, run.model_name);
      const protocol = task.protocol as { noise?: string; probe?: string; pooling?: string };
      /** A result's protocol and key at its budget (`all`: the task's own). */
      const atBudget = budgetKeys(task);
      for (const r of results) {
        const at = atBudget(r.labels);
        const values = {
          noiseProtocol: protocol.noise ?? 'fixed',
          probeProtocol: protocol.probe ?? 'fast',
          pooling: protocol.pooling ?? 'gap',
          accuracy: r.accuracy,
          trainAccuracy: r.trainAccuracy ?? null,
          featureDim: r.featureDim,
          protocol: at.protocol as Prisma.InputJsonValue,
          labels: r.labels ?? null,
          backend: context.backend,
          device: context.device ?? null,
          workerId: context.workerId,
          probeTaskId: task.id,
        };
        await tx.probeResult.upsert({
          where: {
            checkpointId_layer_noiseLevel_protocolKey: {
              checkpointId: context.checkpointId,
              layer: r.layer,
              noiseLevel: task.noiseLevel,
              protocolKey: at.key,
            },
          },
          create: {
            ...values,
            checkpointId: context.checkpointId,
            layer: r.layer,
            noiseLevel: task.noiseLevel,
            protocolKey: at.key,
            sweepId: task.sweepId,
            runId: task.runId,
            dataset: context.dataset,
            method: context.method,
            untrained: context.untrained,
          },
          update: values,
        });
      }
      if (run) {
        for (const labels of new Set(results.map((r) => r.labels))) {
          await refreshSummaries(tx, { sweepId: task.sweepId, modelName: run.model_name, runId: task.runId, untrained: context.untrained, protocolKey: atBudget(labels).key, noiseLevel: task.noiseLevel, labels: labels ?? null });
        }
      }
      const { count } = await tx.probeTask.updateMany({
        where: { id: task.id, status: 'RUNNING' },
        data: { status: 'SUCCEEDED', finishedAt: new Date(), error: null },
      });
      // The largest budget decides (`all` where probed): the best over fewer labels is another question.
      const searchLabels = largestBudget(task);
      const searched = results.filter((r) => r.labels === searchLabels);
      const best = [...searched].sort((a, b) => b.accuracy - a.accuracy)[0];
      await appendEvent(tx, task.sweepId, 'probe.succeeded', { probeTaskId: task.id, runId: task.runId, noiseLevel: task.noiseLevel, best: best ? { layer: best.layer, accuracy: best.accuracy } : null });
      if ((!follow && !finetune) || count !== 1) return { createdTaskIds: [] };
      // The run's tasks of this protocol: a round is complete when every one has succeeded.
      const siblings = await tx.probeTask.findMany({ where: { runId: task.runId, protocolKey: task.protocolKey }, select: { status: true } });
      if (siblings.some((t) => t.status !== 'SUCCEEDED')) return { createdTaskIds: [] };
      if (follow) {
        const next = await this.nextRound(tx, task, context.checkpointId, atBudget(searchLabels).key, follow);
        if (next.length || !finetune) return { createdTaskIds: next };
      }
      if (!finetune) return { createdTaskIds: [] };
      const [cell] = await tx.$queryRaw<{ layer: string; noiseLevel: number; accuracy: number }[]>`
        SELECT layer, noise_level AS "noiseLevel", accuracy FROM probe_results
        WHERE checkpoint_id = ${context.checkpointId}::uuid AND protocol_key = ${atBudget(searchLabels).key}
        ORDER BY accuracy DESC, noise_level ASC, layer ASC LIMIT 1`;
      if (!cell) return { createdTaskIds: [] };
      await tx.probeTask.createMany({
        data: [
          {
            sweepId: task.sweepId,
            runId: task.runId,
            noiseLevel: cell.noiseLevel,
            layers: [cell.layer],
            protocol: finetune.protocol as Prisma.InputJsonValue,
            protocolKey: finetune.protocolKey,
            ...(finetune.labels ? { labels: finetune.labels as Prisma.InputJsonValue } : {}),
          },
        ],
        skipDuplicates: true,
      });
      const created = await tx.probeTask.findMany({ where: { runId: task.runId, protocolKey: finetune.protocolKey, noiseLevel: cell.noiseLevel, status: 'QUEUED' }, select: { id: true } });
      await appendEvent(tx, task.sweepId, 'probe.finetune', { runId: task.runId, layer: cell.layer, noiseLevel: cell.noiseLevel, linearAccuracy: cell.accuracy, probeTaskIds: created.map((t) => t.id) });
      return { createdTaskIds: created.map((t) => t.id) };
    });
  }

  /** The adaptive search's next round of a run whose round is complete: its tasks created (QUEUED), their ids. */
  private async nextRound(tx: Prisma.TransactionClient, task: ProbeTask, checkpointId: string, searchKey: string, follow: FollowUp): Promise<string[]> {
    const levels = await tx.$queryRaw<{ noiseLevel: number; accuracy: number }[]>`
      SELECT noise_level AS "noiseLevel", max(accuracy) AS accuracy FROM probe_results
      WHERE checkpoint_id = ${checkpointId}::uuid AND protocol_key = ${searchKey}
      GROUP BY noise_level`;
    const probed = new Map(levels.map((l) => [l.noiseLevel, l.accuracy]));
    const decision = follow(probed);
    const next = decision.next.filter((l) => !probed.has(l));
    await appendEvent(tx, task.sweepId, 'probe.search', { runId: task.runId, probed: probed.size, next, done: next.length === 0, best: decision.best });
    if (next.length === 0) return [];
    await tx.probeTask.createMany({
      data: next.map((noiseLevel) => ({
        sweepId: task.sweepId,
        runId: task.runId,
        noiseLevel,
        layers: task.layers,
        protocol: task.protocol as Prisma.InputJsonValue,
        protocolKey: task.protocolKey,
        ...(task.labels != null ? { labels: task.labels as Prisma.InputJsonValue } : {}),
      })),
      skipDuplicates: true,
    });
    const created = await tx.probeTask.findMany({ where: { runId: task.runId, protocolKey: task.protocolKey, noiseLevel: { in: next }, status: 'QUEUED' }, select: { id: true }, orderBy: { noiseLevel: 'asc' } });
    return created.map((t) => t.id);
  }

  /**
   * A failure: FAILED when final, else back to QUEUED.
   * `handedBack`: a worker handed the row back because its own environment failed (not the job):
   * the attempt its claim counted is returned, so a misconfigured machine spends none of the job's.
   */
  async fail(id: string, error: string, final: boolean, options: { handedBack?: boolean } = {}): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.probeTask.updateMany({
        where: { id, status: { in: ['QUEUED', 'RUNNING'] } },
        data: final ? { status: 'FAILED', error, finishedAt: new Date() } : { status: 'QUEUED', error, ...(options.handedBack ? { attempts: { decrement: 1 } } : {}) },
      });
      // A task that was cancelled (or had ended) meanwhile changes nothing and tells nothing.
      if (count !== 1) return;
      const task = await tx.probeTask.findUniqueOrThrow({ where: { id }, select: { sweepId: true, runId: true, noiseLevel: true } });
      await appendEvent(tx, task.sweepId, final ? 'probe.failed' : 'probe.requeued', { probeTaskId: id, runId: task.runId, noiseLevel: task.noiseLevel, error });
    });
  }

  async status(id: string): Promise<string | null> {
    const row = await this.prisma.probeTask.findUnique({ where: { id }, select: { status: true } });
    return row?.status ?? null;
  }
}

/** A probe task's label budgets as stored (null: just all). */
export function taskLabelBudgets(task: Pick<ProbeTask, 'labels'>): (number | 'all')[] {
  return Array.isArray(task.labels) && task.labels.length > 0 ? (task.labels as (number | 'all')[]) : ['all'];
}

/** The largest of a task's budgets: undefined for `all` (listed last when present). */
function largestBudget(task: Pick<ProbeTask, 'labels'>): number | undefined {
  const last = taskLabelBudgets(task).at(-1);
  return last === 'all' ? undefined : last;
}

/** For a task: the protocol and protocol key of its result at a budget (undefined: all, the task's own, as stored). */
function budgetKeys(task: Pick<ProbeTask, 'protocol' | 'protocolKey'>): (labels: number | undefined) => { protocol: ProbeProtocol | Prisma.JsonValue; key: string } {
  return (labels) => {
    if (labels === undefined) return { protocol: task.protocol, key: task.protocolKey };
    const protocol = protocolAtBudget(probeProtocolSchema.parse(task.protocol), labels);
    return { protocol, key: protocolKey(protocol) };
  };
}
