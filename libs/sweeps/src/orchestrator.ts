import { JOB_NAMES, jobIds } from '@ddae/contracts';
import type {
  BaselineRepository,
  ProbeRepository,
  ProgressPointRecord,
  ProgressProbeContext,
  ProgressProbeRepository,
  RunRepository,
  SweepRepository,
  CreatedSweep,
} from '@ddae/db';
import { WorkerRepository, type Prisma, type PrismaClient } from '@ddae/db';
import { jobPriority, withTimeout, type ComputeQueue, type EnqueueRequest } from '@ddae/queue';

/** The job of each kind of row, at its sweep's priority (see jobPriority). */
const jobs = {
  baseline: (baselineId: string, sweepPriority?: number): EnqueueRequest => ({ name: JOB_NAMES.baseline, data: { v: 1, baselineId }, priority: jobPriority(JOB_NAMES.baseline, sweepPriority) }),
  probe: (probeTaskId: string, sweepPriority?: number): EnqueueRequest => ({ name: JOB_NAMES.probe, data: { v: 1, probeTaskId }, priority: jobPriority(JOB_NAMES.probe, sweepPriority) }),
  /** An untrained-network control takes seconds (0 steps): it runs as early as a baseline. */
  pretrain: (runId: string, sweepPriority?: number, position = 0, untrained = false): EnqueueRequest => ({
    name: JOB_NAMES.pretrain,
    data: { v: 1, runId },
    priority: untrained ? jobPriority(JOB_NAMES.baseline, sweepPriority) : jobPriority(JOB_NAMES.pretrain, sweepPriority, position),
  }),
};
import { sweepSpecSchema, type SweepSpec } from '@ddae/contracts';
import type { FinetuneFollowUp, LayerResult, ProbeTask } from '@ddae/db';
import { resolveFinetune, type SweepPlan } from './plan';
import { nextNoiseLevels, type NoiseSearchOptions } from './noise-search';

/** The adaptive noise search a sweep's spec asks for, for a run of `method` (null: the full grid). */
export function noiseSearchOf(spec: unknown, method: string): { grid: number[]; options: NoiseSearchOptions } | null {
  const probe = (spec as Partial<SweepSpec> | null)?.probe;
  const search = probe?.noiseSearch;
  if (!probe || !search || search.search !== 'adaptive') return null;
  const grid = (method === 'ddpm' ? probe.timesteps : probe.sigmas) ?? [];
  return { grid, options: { coarse: search.coarse, minStep: search.minStep } };
}

/**
 * The fine-tuning that follows a run's linear probes (`probe.finetune.cells: best`), or null: none
 * asked, the run is an untrained control, or the spec does not parse (a stored spec of an older schema).
 */
export function finetuneFollowUpOf(spec: unknown, untrained: boolean): FinetuneFollowUp | null {
  if (untrained) return null;
  const parsed = sweepSpecSchema.safeParse(spec);
  if (!parsed.success) return null;
  const plan = resolveFinetune(parsed.data);
  if (!plan || plan.cells !== 'best') return null;
  return { protocol: plan.protocol, protocolKey: plan.protocolKey, ...(plan.labels ? { labels: plan.labels } : {}) };
}

/** Where a probe result was measured, stored with it. */
export interface ProbeContext {
  checkpointId: string;
  dataset: string;
  method: string;
  untrained: boolean;
  backend: string;
  /** The device that computed it (see gpuDeviceLabel); absent: not known. */
  device?: string;
  workerId: string;
}

export interface OrchestratorDeps {
  prisma: PrismaClient;
  sweeps: SweepRepository;
  runs: RunRepository;
  probes: ProbeRepository;
  progressProbes: ProgressProbeRepository;
  baselines: BaselineRepository;
  queue: ComputeQueue;
}

/** How long a submission waits for Redis to take its first jobs before leaving them to the reconciler. */
export const SUBMIT_ENQUEUE_TIMEOUT_MS = 5_000;

/**
 * A stored sweep and, when this submission created it, whether its first jobs reached the queue
 * (false: the reconciler offers them). A replay of an earlier submission enqueues nothing: undefined.
 */
export type SubmittedSweep = CreatedSweep & { queued?: boolean };

/**
 * Decides what work follows what, in ONE place: a sweep's submission enqueues its pretraining
 * runs and baselines; a finished run enqueues its probe tasks; any terminal task refreshes the
 * sweep's status. Postgres says what is to be done; the queue only carries ids, so every step is
 * safe to repeat (deterministic job ids, idempotent writes).
 */
export class SweepOrchestrator {
  constructor(private readonly deps: OrchestratorDeps) {}

  /**
   * Stores the sweep (one transaction), then offers its first jobs to the queue. Postgres is the
   * record: when Redis cannot take the jobs the sweep stays stored and `queued` is false; the
   * reconciler offers them once Redis answers. Nothing is ever half-refused.
   */
  async submit(spec: SweepSpec, plan: SweepPlan, idempotencyKey?: string): Promise<SubmittedSweep> {
    const created = await this.deps.sweeps.create({
      name: plan.name,
      priority: spec.priority,
      maxConcurrency: spec.maxConcurrency,
      dataset: plan.dataset,
      spec: spec as unknown as Prisma.InputJsonValue,
      specHash: plan.specHash,
      idempotencyKey,
      runs: plan.runs.map((r) => ({
        key: r.key,
        modelName: r.modelName,
        untrained: r.untrained,
        method: r.method,
        ...(r.unet ? { unet: r.unet as unknown as Prisma.InputJsonValue } : {}),
        ...(r.dit ? { dit: r.dit as unknown as Prisma.InputJsonValue } : {}),
        dataset: r.dataset,
        seed: r.seed,
        hyper: r.hyper as unknown as Prisma.InputJsonValue,
        steps: r.hyper.steps,
        ...(r.hyper.importFrom ? { sourcePath: r.hyper.importFrom.path, ...(r.hyper.importFrom.sha256 ? { sourceSha256: r.hyper.importFrom.sha256 } : {}) } : {}),
      })),
      probeTasks: plan.probeTasks.map((t) => ({
        runKey: t.runKey,
        noiseLevel: t.noiseLevel,
        layers: t.layers,
        protocol: t.protocol as unknown as Prisma.InputJsonValue,
        protocolKey: t.protocolKey,
        ...(t.labels ? { labels: t.labels } : {}),
      })),
      baselines: plan.baselines.map((b) => ({
        dataset: b.dataset,
        kind: b.kind,
        protocol: b.protocol as unknown as Prisma.InputJsonValue,
        protocolKey: b.protocolKey,
        ...(b.protocol.labels !== undefined ? { labels: b.protocol.labels } : {}),
      })),
    });
    if (!created.created) return created;
    const priority = created.sweep.priority;
    let position = 0;
    const requests = [
      ...created.pendingBaselineIds.map((baselineId) => jobs.baseline(baselineId, priority)),
      ...created.runIds.map((runId, i) => (plan.runs[i].untrained ? jobs.pretrain(runId, priority, 0, true) : jobs.pretrain(runId, priority, position++))),
    ];
    // A late success after the timeout is harmless: the reconciler's offer of the same ids is a no-op.
    const queued = await withTimeout(this.deps.queue.enqueue(requests), SUBMIT_ENQUEUE_TIMEOUT_MS, 'enqueue').then(
      () => true,
      () => false,
    );
    // A sweep whose every baseline is already known and that has no runs is done at once.
    await this.deps.sweeps.refreshStatus(created.sweep.id);
    return { ...created, queued };
  }

  /**
   * Probing during pretraining measured one of the run's checkpoints: its cells are stored on their
   * natural key (a point reported again after a restart changes nothing). Nothing follows from it
   * here: a plateau ends the pretraining task itself, whose final checkpoint (the plateau's) then
   * completes the run as usual (`RunRepository.complete` with `stoppedEarly`, then `runSucceeded`).
   */
  async progressProbed(runId: string, point: ProgressPointRecord, context: ProgressProbeContext): Promise<{ isNew: boolean }> {
    return this.deps.progressProbes.record(runId, point, context);
  }

  /** A run reached its final checkpoint: its probe tasks can start (when the sweep resumes, if paused). */
  async runSucceeded(runId: string, sweepId: string): Promise<void> {
    const sweep = await this.deps.sweeps.findById(sweepId);
    const tasks = sweep?.pausedAt ? [] : await this.deps.probes.openTasksOfRun(runId);
    await this.deps.queue.enqueue(tasks.map((t) => jobs.probe(t.id, sweep?.priority)));
    await this.deps.sweeps.refreshStatus(sweepId);
  }

  /**
   * A probe task finished: its results are stored and the task marked done in one transaction and,
   * under an adaptive noise search, when this completes a round of the run's probes, the next
   * round's tasks are created in that same transaction; when the run's linear probes are then done
   * and the spec fine-tunes the best cell, that cell's fine-tuning task is created there too (so the sweep is never seen finished between
   * two rounds) and then enqueued. A retried call stores the same rows and creates nothing twice
   * (natural keys); tasks created but not enqueued (a crash in between) are re-offered by reconcile.
   */
  async probeSucceeded(task: ProbeTask, context: ProbeContext, results: LayerResult[]): Promise<{ next: string[] }> {
    const sweep = await this.deps.sweeps.findById(task.sweepId);
    const search = sweep ? noiseSearchOf(sweep.spec, context.method) : null;
    const follow = search && sweep?.status !== 'CANCELLED' ? (probed: ReadonlyMap<number, number>) => nextNoiseLevels(search.grid, probed, search.options) : undefined;
    const finetune = sweep && sweep.status !== 'CANCELLED' ? finetuneFollowUpOf(sweep.spec, context.untrained) : null;
    const { createdTaskIds } = await this.deps.probes.complete(task, context, results, follow, finetune ?? undefined);
    if (createdTaskIds.length && sweep && !sweep.pausedAt) await this.deps.queue.enqueue(createdTaskIds.map((id) => jobs.probe(id, sweep.priority)));
    await this.deps.sweeps.refreshStatus(task.sweepId);
    return { next: createdTaskIds };
  }

  /** A task of the sweep was claimed by a worker. */
  async taskStarted(sweepId: string): Promise<void> {
    await this.deps.sweeps.markStarted([sweepId]);
  }

  async baselineStarted(baselineId: string): Promise<void> {
    await this.deps.sweeps.markStarted(await this.deps.baselines.sweepIds(baselineId));
  }

  /** Any task of the sweep reached a terminal state. */
  async taskEnded(sweepId: string): Promise<void> {
    await this.deps.sweeps.refreshStatus(sweepId);
  }

  async baselineEnded(baselineId: string): Promise<void> {
    for (const sweepId of await this.deps.baselines.sweepIds(baselineId)) await this.deps.sweeps.refreshStatus(sweepId);
  }

  /** Reruns exactly the failed cells of a sweep (null: no such sweep; 'cancelled': refused). */
  async retryFailed(sweepId: string) {
    const current = await this.deps.sweeps.findById(sweepId);
    if (!current) return null;
    if (current.status === 'CANCELLED') return 'cancelled' as const;
    const retried = await this.deps.sweeps.retryFailed(sweepId);
    if (!retried) return null;
    await this.deps.queue.requeue([
      ...retried.baselineIds.map((id) => jobs.baseline(id, current.priority)),
      ...retried.probeTaskIds.map((id) => jobs.probe(id, current.priority)),
      ...retried.runIds.map((id) => jobs.pretrain(id, current.priority)),
    ]);
    const sweep = (await this.deps.sweeps.refreshStatus(sweepId)) ?? retried.sweep;
    return { sweep, retried: { runs: retried.runIds.length, probeTasks: retried.probeTaskIds.length, baselines: retried.baselineIds.length } };
  }

  /**
   * Pause: queued work of the sweep leaves the queue and nothing new of it starts (a job that
   * arrives anyway is refused at its claim); running jobs finish. Resume puts the queued work back.
   */
  async pause(sweepId: string) {
    const r = await this.deps.sweeps.setPaused(sweepId, true);
    if (!r) return null;
    await this.deps.queue.removeWaiting([...r.runIds.map(jobIds.pretrain), ...r.probeTaskIds.map(jobIds.probe)]);
    return r.sweep;
  }

  async resume(sweepId: string) {
    const r = await this.deps.sweeps.setPaused(sweepId, false);
    if (!r) return null;
    // Jobs refused while paused completed as skipped and still hold their ids: requeue replaces them.
    await this.deps.queue.requeue([
      ...r.probeTaskIds.map((id) => jobs.probe(id, r.sweep.priority)),
      ...r.runIds.map((id, i) => jobs.pretrain(id, r.sweep.priority, i)),
    ]);
    return r.sweep;
  }

  async cancel(sweepId: string) {
    const cancelled = await this.deps.sweeps.cancel(sweepId);
    if (!cancelled) return null;
    await this.deps.queue.removeWaiting([
      ...cancelled.runIds.map(jobIds.pretrain),
      ...cancelled.probeTaskIds.map(jobIds.probe),
    ]);
    return cancelled.sweep;
  }

  /**
   * Repairs what a crash or a lost Redis can leave behind, safely at any time:
   * 1. rows RUNNING on a worker that stopped heartbeating (dead, or never registered) go back to
   *    QUEUED: nobody is working on them;
   * 2. every QUEUED row is offered to the queue again (deterministic ids make this a no-op for jobs
   *    still waiting or running in Redis; a job Redis holds as failed or completed is replaced),
   *    which recovers lost enqueues, a flushed Redis and jobs BullMQ gave up on.
   */
  async reconcile(options: { workerStaleMs: number } = { workerStaleMs: 30_000 }): Promise<{ enqueued: number; reset: number }> {
    const { prisma } = this.deps;
    const cutoff = new Date(Date.now() - options.workerStaleMs);
    const reset = await new WorkerRepository(prisma).releaseStale(cutoff);
    const [runs, probes, baselines] = await Promise.all([
      prisma.run.findMany({ where: { status: 'QUEUED', sweep: { pausedAt: null } }, select: { id: true, untrained: true, sweep: { select: { priority: true } } } }),
      prisma.probeTask.findMany({ where: { status: 'QUEUED', run: { status: 'SUCCEEDED' }, sweep: { pausedAt: null } }, select: { id: true, sweep: { select: { priority: true } } } }),
      prisma.baseline.findMany({ where: { status: 'QUEUED' }, select: { id: true } }),
    ]);
    const requests: EnqueueRequest[] = [
      ...baselines.map((b) => jobs.baseline(b.id)),
      ...probes.map((p) => jobs.probe(p.id, p.sweep.priority)),
      ...runs.map((r) => jobs.pretrain(r.id, r.sweep.priority, 0, r.untrained)),
    ];
    // requeue, not enqueue: a job BullMQ ended (failed for stalling too often while its worker was
    // killed again and again) still holds its id and would swallow a plain add: the row would wait forever.
    await this.deps.queue.requeue(requests);
    return { enqueued: requests.length, reset };
  }
}
