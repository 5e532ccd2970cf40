import { Inject, Injectable, Logger } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DelayedError, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import { z } from 'zod';
import {
  JOB_NAMES,
  baselinePayloadSchema,
  pretrainPayloadSchema,
  probePayloadSchema,
  probeProtocolSchema,
  progressProbeConfigSchema,
  protocolKey,
  ditConfigSchema,
  unetConfigSchema,
  workerSampleSpec,
  type BaselineTask,
  type ComputeResult,
  type ComputeTask,
  type DatasetName,
  type Method,
  type PretrainTask,
  type ProbeTask,
  type GenerationQuality,
  type SampleGridInfo,
  type DiTConfig,
  type UNetConfig,
} from '@ddae/contracts';
import { addLogContext, type WorkerEnv } from '@ddae/config';
import { datasetProblem, type DatasetMissingError } from '@ddae/datasets';
import { BaselineRepository, ProbeRepository, RunGenerationQualityRepository, RunRepository, RunSampleRepository, taskLabelBudgets, THROTTLED, TrainLossRepository, WorkerRepository } from '@ddae/db';
import { withTimeout, type ComputeQueue } from '@ddae/queue';
import { SweepOrchestrator, pretrainSettings, type RunHyper } from '@ddae/sweeps';
import { ComputeError, ComputeProcess, type ComputeCallbacks } from '../compute/compute-process';
import { NON_RETRYABLE_ERRORS, STOPPED_ERROR } from '../compute/child-protocol';
import { COMPUTE_QUEUE, WORKER_ENV, WorkerIdentity } from '../core/worker-identity';
import { MISSING_DATASET_LIMITS, missingDatasetDecision, type MissingDatasetDecision } from '../core/missing-dataset';
import { handBacks, recordHandBack } from '../core/hand-back-log';
import { ParkedJobs } from '../core/parked-jobs';
import { CurrentJob } from '../core/current-job';
import { environmentFault, type FaultError } from '../core/environment-fault';
import { WorkerHealth } from '../core/worker-health';
import { WorkerMetrics } from '../core/worker-metrics';
import { retryWrite } from '../core/retry';

/** What a job's row is, for the bookkeeping shared by every kind. */
interface RowHandle {
  label: string;
  status(): Promise<string | null>;
  fail(error: string, final: boolean, options?: { handedBack?: boolean }): Promise<void>;
  ended(): Promise<void>;
}

/** How long a stopping worker tries to hand its job back to Redis before leaving that to the lock's expiry. */
const HAND_BACK_TIMEOUT_MS = 2_000;

/** How long a job of a sweep at its concurrency cap waits before it is offered again. */
const THROTTLE_DELAY_MS = 5_000;

/** A job's return value in BullMQ; computeMs: the time its task took in the compute child (the rest of the job's time is overhead). */
export type JobOutcome = { outcome: 'done' | 'skipped' | 'cancelled'; detail?: string; computeMs?: number };

/**
 * Thin adapters, one per job name: parse the payload -> claim the row -> run the compute task in
 * a child process -> persist the result in one transaction -> let the orchestrator decide what
 * follows. Retry policy lives here: deterministic errors fail at once, the rest retry.
 */
@Injectable()
export class ComputeJobsService {
  private readonly logger = new Logger('Jobs');
  private computeProcess?: ComputeProcess;
  /**
   * Set by the runtime: stop fetching jobs for a while (a job was just handed back for an idle
   * worker that has its data set: it is that worker's to take when it comes back).
   */
  standAside?: (ms: number) => Promise<void>;

  constructor(
    @Inject(WORKER_ENV) private readonly env: WorkerEnv,
    private readonly identity: WorkerIdentity,
    private readonly current: CurrentJob,
    private readonly runs: RunRepository,
    private readonly probes: ProbeRepository,
    private readonly baselines: BaselineRepository,
    private readonly trainLosses: TrainLossRepository,
    private readonly samples: RunSampleRepository,
    private readonly generation: RunGenerationQualityRepository,
    private readonly orchestrator: SweepOrchestrator,
    private readonly health: WorkerHealth,
    private readonly metrics: WorkerMetrics,
    private readonly workers: WorkerRepository,
    @Inject(COMPUTE_QUEUE) private readonly queue: ComputeQueue,
    private readonly parked: ParkedJobs,
  ) {}

  async process(job: Job, token?: string): Promise<JobOutcome> {
    const out = await this.dispatch(job, token);
    const computeMs = out.outcome === 'done' ? this.computeProcess?.last?.computeMs : undefined;
    return computeMs === undefined ? out : { ...out, computeMs };
  }

  private async dispatch(job: Job, token?: string): Promise<JobOutcome> {
    switch (job.name) {
      case JOB_NAMES.pretrain:
        return this.pretrain(job, token);
      case JOB_NAMES.probe:
        return this.probe(job, token);
      case JOB_NAMES.baseline:
        return this.baseline(job, token);
      default:
        throw new UnrecoverableError(`unknown job name "${job.name}"`);
    }
  }

  private get artifactRoot(): string {
    return path.resolve(this.env.ARTIFACT_DIR);
  }

  private async pretrain(job: Job, token?: string): Promise<JobOutcome> {
    const { runId } = parsePayload(pretrainPayloadSchema, job);
    addLogContext({ runId });
    await this.leaveIfUnreadable(job, token, async () => openDataset(await this.runs.findById(runId)));
    const run = await this.write('claim run', () => this.runs.claim(runId, { workerId: this.identity.id, backend: this.identity.backend, device: this.identity.resultDevice() }));
    if (run === THROTTLED) return this.throttle(job, token);
    if (!run) return { outcome: 'skipped', detail: `run ${runId} is ${(await this.runs.status(runId)) ?? 'gone'}` };
    addLogContext({ sweepId: run.sweepId });
    await this.write('mark sweep started', () => this.orchestrator.taskStarted(run.sweepId));
    const handle: RowHandle = {
      label: `run ${run.key}`,
      status: () => this.runs.status(runId),
      fail: (error, final, options) => this.runs.fail(runId, error, final, options),
      ended: () => this.orchestrator.taskEnded(run.sweepId),
    };
    const hyper = run.hyper as unknown as RunHyper;
    const { task, progressProbe } = await this.build(handle, () => {
      const task: PretrainTask = {
        kind: 'pretrain',
        runId,
        method: run.method as Method,
        ...runNetwork(run),
        dataset: { name: run.dataset as DatasetName },
        ...pretrainSettings(hyper),
        seed: run.seed,
        checkpointDir: path.join(this.artifactRoot, 'runs', runId),
        // A trained run's final checkpoint is sampled (a small grid, beside it; the spec's
        // pretrain.samples, else the default grid; none with `false`); the untrained control's is noise.
        ...(run.untrained || hyper.importFrom || hyper.samples === false ? {} : { samples: hyper.samples ?? workerSampleSpec(run.method as Method) }),
        // FID/KID when the spec asks (the untrained control's too: the figure a trained model must beat).
        ...(hyper.fid ? { fid: hyper.fid } : {}),
        // Pretrained elsewhere: imported, not trained; a relative path is under the artifact root.
        ...(hyper.importFrom
          ? { importFrom: { path: path.resolve(this.artifactRoot, hyper.importFrom.path), ...(hyper.importFrom.sha256 ? { sha256: hyper.importFrom.sha256 } : {}) } }
          : {}),
      };
      // Probing during pretraining, as planned into the run's settings (Postgres is a boundary too).
      const progressProbe = hyper.progressProbe === undefined ? undefined : progressProbeConfigSchema.parse(hyper.progressProbe);
      if (progressProbe) task.progressProbe = progressProbe;
      return { task, progressProbe };
    });
    const progressContext = progressProbe && {
      protocol: progressProbe.protocol,
      protocolKey: protocolKey(progressProbe.protocol),
      backend: this.identity.backend,
      // The run's device as claimed (the child computes on the adapter the worker holds).
      device: this.identity.resultDevice(),
      workerId: this.identity.id,
    };
    let lastWrite = 0;
    const result = await this.execute(job, token, handle, task, {
      onCheckpoint: async (info) => {
        await this.write('record checkpoint', () => this.runs.recordCheckpoint(runId, { step: info.step, path: this.relative(info.path), sha256: info.sha256, loss: info.loss }));
      },
      onProgressProbe: async (point) => {
        if (!progressContext) return;
        const { isNew } = await this.write('record progress probe', () => this.orchestrator.progressProbed(runId, point, progressContext));
        if (isNew) this.logger.log(`run ${run.key} @ step ${point.step}: probe ${point.accuracy.toFixed(4)}`);
      },
      // One upsert on (run, step) per point: a retried or resumed attempt that reports it again converges.
      onTrainLoss: async (point) => {
        await this.write('record training loss', () => this.trainLosses.record(runId, [point]));
      },
      onProgress: (p) => {
        if (p.message?.startsWith('resumed')) this.logger.log(`run ${run.key}: ${p.message}`);
        void job.updateProgress({ fraction: p.fraction, step: p.step, loss: p.loss }).catch(() => undefined);
        if (p.step !== undefined) this.metrics.trainingProgress(runId, p.step, hyper.batchSize);
        if (p.step !== undefined && Date.now() - lastWrite > 2_000) {
          lastWrite = Date.now();
          void this.runs.progress(runId, p.step, p.loss).catch(() => undefined);
        }
      },
    });
    if ('outcome' in result) return result;
    if (result.kind !== 'pretrain') throw new Error(`expected a pretrain result, got ${result.kind}`);
    const { parameters, finalCheckpoint: final } = result;
    if (parameters) await this.write('record parameters', () => this.runs.setParameters(runId, parameters));
    // The device stored with the run and with what its job sampled and measured.
    const device = this.identity.resultDevice(result.device);
    if (result.samples) await this.recordSamples(runId, run.key, result.samples, device);
    else if (result.samplesError) this.logger.warn(`run ${run.key}: no sample grid (${result.samplesError})`);
    if (result.generation) await this.recordGeneration(runId, run.key, result.generation, device);
    else if (result.generationError) this.logger.warn(`run ${run.key}: no FID/KID (${result.generationError})`);
    const stoppedEarly = result.stoppedEarly === true;
    const completed = await this.write('complete run', () => this.runs.complete(runId, { step: final.step, path: this.relative(final.path), sha256: final.sha256, loss: final.loss }, { stoppedEarly, device, ...(result.source ? { sourceSha256: result.source.sha256 } : {}) }));
    if (completed) await this.write('enqueue probes', () => this.orchestrator.runSucceeded(runId, run.sweepId));
    if (result.source) this.logger.log(`run ${run.key}: imported ${result.source.path} (sha256 ${result.source.sha256})`);
    this.logger.log(`run ${run.key}: ${result.steps} steps in ${result.seconds.toFixed(1)} s${stoppedEarly ? ` (stopped early: the probe plateaued; planned ${hyper.steps})` : ''}${onDevice(result)}`);
    return { outcome: 'done' };
  }

  private async probe(job: Job, token?: string): Promise<JobOutcome> {
    const { probeTaskId } = parsePayload(probePayloadSchema, job);
    addLogContext({ probeTaskId });
    await this.leaveIfUnreadable(job, token, async () => {
      const task = await this.probes.findById(probeTaskId);
      return task && OPEN.has(task.status) ? openDataset(await this.runs.findById(task.runId), true) : undefined;
    });
    const row = await this.write('claim probe task', () => this.probes.claim(probeTaskId, { workerId: this.identity.id }));
    if (row === THROTTLED) return this.throttle(job, token);
    if (!row) return { outcome: 'skipped', detail: `probe task ${probeTaskId} is ${(await this.probes.status(probeTaskId)) ?? 'gone'}` };
    addLogContext({ sweepId: row.sweepId, runId: row.runId });
    await this.write('mark sweep started', () => this.orchestrator.taskStarted(row.sweepId));
    const handle: RowHandle = {
      label: `probe ${probeTaskId}`,
      status: () => this.probes.status(probeTaskId),
      fail: (error, final, options) => this.probes.fail(probeTaskId, error, final, options),
      ended: () => this.orchestrator.taskEnded(row.sweepId),
    };
    const run = await this.runs.findById(row.runId);
    const checkpoint = await this.runs.finalCheckpoint(row.runId);
    if (!run || !checkpoint) {
      await handle.fail('the run has no final checkpoint', true);
      await handle.ended();
      throw new UnrecoverableError(`probe task ${probeTaskId}: the run has no final checkpoint`);
    }
    const task: ProbeTask = await this.build(handle, () => ({
      kind: 'probe',
      probeTaskId,
      method: run.method as Method,
      ...runNetwork(run),
      dataset: { name: run.dataset as DatasetName },
      checkpointPath: path.resolve(this.artifactRoot, checkpoint.path),
      noiseLevel: row.noiseLevel,
      layers: row.layers,
      protocol: probeProtocolSchema.parse(row.protocol),
      // One linear probe per layer and label budget on the same features.
      ...(row.labels != null ? { labels: taskLabelBudgets(row) } : {}),
      featureCacheDir: path.join(this.artifactRoot, 'features'),
    }));
    const result = await this.execute(job, token, handle, task, {});
    if ('outcome' in result) return result;
    if (result.kind !== 'probe') throw new Error(`expected a probe result, got ${result.kind}`);
    const context = { checkpointId: checkpoint.id, dataset: run.dataset, method: run.method, untrained: run.untrained, backend: this.identity.backend, device: this.identity.resultDevice(result.device), workerId: this.identity.id };
    // Stores the results and decides what follows (an adaptive noise search's next round) at once.
    const { next } = await this.write('store probe results', () => this.orchestrator.probeSucceeded(row, context, result.layers));
    if (next.length) this.logger.log(`probe ${run.key}: noise search continues with ${next.length} more level(s)`);
    // The best with all labels (else the largest budget's): fewer labels answer another question.
    const largest = result.layers.at(-1)?.labels;
    const best = result.layers.filter((l) => l.labels === largest).sort((a, b) => b.accuracy - a.accuracy)[0];
    const budgets = new Set(result.layers.map((l) => l.labels)).size;
    const cache = result.featureCache ? `, feature cache ${result.featureCache.hits} hit(s) ${result.featureCache.misses} miss(es)` : '';
    this.logger.log(`probe ${run.key} @ ${row.noiseLevel}: best ${best?.layer} ${best?.accuracy.toFixed(4)}${budgets > 1 ? ` with ${largest ?? 'all'} labels (${budgets} budgets)` : ''} (${result.seconds.toFixed(1)} s${cache})${onDevice(result)}`);
    return { outcome: 'done' };
  }

  private async baseline(job: Job, token?: string): Promise<JobOutcome> {
    const { baselineId } = parsePayload(baselinePayloadSchema, job);
    addLogContext({ baselineId });
    await this.leaveIfUnreadable(job, token, async () => openDataset(await this.baselines.findById(baselineId)));
    const row = await this.write('claim baseline', () => this.baselines.claim(baselineId, { workerId: this.identity.id, backend: this.identity.backend, device: this.identity.resultDevice() }));
    if (!row) return { outcome: 'skipped', detail: `baseline ${baselineId} is not open` };
    await this.write('mark sweeps started', () => this.orchestrator.baselineStarted(baselineId));
    const handle: RowHandle = {
      label: `baseline ${row.kind}/${row.dataset}`,
      status: async () => (await this.baselines.findById(baselineId))?.status ?? null,
      fail: (error, final, options) => this.baselines.fail(baselineId, error, final, options),
      ended: () => this.orchestrator.baselineEnded(baselineId),
    };
    const task: BaselineTask = await this.build(handle, () => ({
      kind: 'baseline',
      baselineId,
      baseline: 'pixels',
      dataset: { name: row.dataset as DatasetName },
      protocol: probeProtocolSchema.parse(row.protocol),
    }));
    const result = await this.execute(job, token, handle, task, {});
    if ('outcome' in result) return result;
    if (result.kind !== 'baseline') throw new Error(`expected a baseline result, got ${result.kind}`);
    const { accuracy, featureDim } = result;
    await this.write('store baseline', () => this.baselines.complete(baselineId, { accuracy, featureDim, device: this.identity.resultDevice(result.device) }));
    await this.write('refresh sweeps', () => handle.ended());
    this.logger.log(`baseline ${row.kind}/${row.dataset}: ${result.accuracy.toFixed(4)}${onDevice(result)}`);
    return { outcome: 'done' };
  }

  /**
   * Builds a job's task from its claimed row (its network, protocol and settings, parsed: Postgres
   * is a boundary too). Building is pure, so a failure here (a ZodError) fails the same way on
   * every attempt: the job fails at once, the reason on its row and in the sweep's events.
   */
  private async build<T>(row: RowHandle, make: () => T): Promise<T> {
    try {
      return make();
    } catch (error) {
      const reason = `${row.label} cannot be built: ${describeError(error)}`;
      this.logger.warn(reason);
      await this.write('record failure', () => row.fail(reason, true));
      await this.write('refresh sweep', () => row.ended());
      throw new UnrecoverableError(reason);
    }
  }

  /**
   * This worker's compute child, kept warm across jobs (see ComputeProcess): created on the first
   * job, once the backend is known.
   */
  get compute(): ComputeProcess {
    this.computeProcess ??= new ComputeProcess({
      backend: this.identity.backend,
      env: this.identity.childEnv(),
      maxJobs: this.env.COMPUTE_CHILD_MAX_JOBS,
      maxRssBytes: this.env.COMPUTE_CHILD_MAX_RSS_MB * 2 ** 20,
      maxTensorBytes: this.env.COMPUTE_CHILD_MAX_TENSOR_MB * 2 ** 20,
    });
    return this.computeProcess;
  }

  /** Ends the warm compute child between jobs (the worker is shutting down). */
  closeCompute(): void {
    this.computeProcess?.close();
  }

  /**
   * Runs the task in the compute child and applies the retry policy to its failure.
   * Returns the result, or an outcome when the task was cancelled.
   */
  private async execute(job: Job, token: string | undefined, row: RowHandle, task: ComputeTask, callbacks: ComputeCallbacks): Promise<ComputeResult | JobOutcome> {
    // A data set this worker cannot read: known before a compute child is started (a few stats).
    const dataset = task.dataset.name;
    const missing = await datasetProblem(dataset);
    this.identity.sawDataset(dataset, missing === undefined);
    if (missing) {
      // One it could read before lost files: its machine broke (environment-fault.ts). One it never
      // could read: a data set it lacks, which another worker may have (missing-dataset.ts).
      const fault = environmentFault(faultOf(missing), { artifactRoot: this.artifactRoot, datasetDirs: this.identity.datasetDirs });
      if (fault !== undefined) return await this.handBack(job, token, row, fault);
      return await this.missingDataset(job, token, row, dataset, missing);
    }
    const child = this.compute;
    this.current.start({ jobId: job.id ?? '?', label: row.label, child, status: row.status });
    try {
      const result = await child.run(task, callbacks);
      // Its GPU memory goes out with the next heartbeat (the one after the job).
      this.identity.sawResult(result.device);
      if (child.last?.retired) this.logger.log(`compute child ${child.last.pid} replaced after ${child.last.jobs} job(s): ${child.last.retired}`);
      return result;
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      if (e.name === STOPPED_ERROR) {
        if ((await row.status()) === 'CANCELLED') {
          this.logger.log(`${row.label}: cancelled`);
          return { outcome: 'cancelled' };
        }
        // Stopped for a shutdown: hand the job back without spending an attempt. Postgres first:
        // with the row QUEUED the reconciler offers the work again even if Redis never hears of it.
        await this.write('release row', () => row.fail('released by a stopping worker', false));
        if (token) {
          // Redis may be unreachable (the worker's commands would wait for it forever): the lock
          // then expires and the job comes back as stalled, or the reconciler re-enqueues it.
          await withTimeout(job.moveToWait(token), HAND_BACK_TIMEOUT_MS, 'handing the job back to Redis').catch((error: Error) => this.logger.warn(`${row.label}: ${error.message}`));
          throw new WaitingError();
        }
        throw e;
      }
      // The machine's fault, not the job's: hand it back unspent and take no more jobs here.
      const fault = environmentFault(faultOf(e), { artifactRoot: this.artifactRoot, datasetDirs: this.identity.datasetDirs });
      if (fault !== undefined) return await this.handBack(job, token, row, fault);
      const retryable = !NON_RETRYABLE_ERRORS.has(e.name);
      const final = !retryable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      this.logger.warn(`${row.label}: ${e.name}: ${e.message}${final ? '' : ' (will retry)'}`);
      await this.write('record failure', () => row.fail(`${e.name}: ${e.message}`, final));
      if (final) await this.write('refresh sweep', () => row.ended());
      throw retryable ? e : new UnrecoverableError(`${e.name}: ${e.message}`);
    } finally {
      this.current.clear();
    }
  }

  /**
   * An environment fault met during a job: stop taking jobs first (so this worker never takes the
   * job again), then hand the job back without spending an attempt: its row goes back to QUEUED with
   * the attempt its claim counted returned and a `*.requeued` event naming the fault, and the BullMQ
   * job goes back to wait as it was (moveToWait does not count an attempt), for a healthy worker.
   */
  private async handBack(job: Job, token: string | undefined, row: RowHandle, fault: string): Promise<never> {
    this.logger.error(`${row.label}: this worker's environment failed, not the job: handing it back`);
    await this.health.unhealthy(fault);
    await this.write('hand back row', () => row.fail(`worker ${this.identity.id} handed it back: ${fault}`, false, { handedBack: true }));
    if (!token) throw new Error(`${row.label}: ${fault}`);
    await withTimeout(job.moveToWait(token), HAND_BACK_TIMEOUT_MS, 'handing the job back to Redis').catch((error: Error) => this.logger.warn(`${row.label}: ${error.message}`));
    throw new WaitingError();
  }

  /**
   * Before anything is recorded for the attempt (no claim, no `*.started` event, no attempt counted):
   * a job whose data set this worker cannot read, and that another live worker can, goes back to
   * the queue unspent, delayed, parked for that worker to wake (see missingDataset). Anything else
   * (it can read it, a broken machine, nobody has the data set, the row is not open) goes on to the
   * claim, where execute() deals with it as before. `datasetOf`: the data set of the job's row, when
   * the row is open (QUEUED, or RUNNING left by a lost worker).
   */
  private async leaveIfUnreadable(job: Job, token: string | undefined, datasetOf: () => Promise<DatasetName | undefined>): Promise<void> {
    if (!token) return;
    const dataset = await this.write('read the job\'s data set', datasetOf);
    if (dataset === undefined) return;
    const missing = await datasetProblem(dataset);
    this.identity.sawDataset(dataset, missing === undefined);
    if (!missing) return;
    if (environmentFault(faultOf(missing), { artifactRoot: this.artifactRoot, datasetDirs: this.identity.datasetDirs }) !== undefined) return;
    await this.missingDataset(job, token, undefined, dataset, missing);
  }

  /**
   * The job needs a data set this worker cannot read: handed back, unspent and delayed, when another
   * live worker reports it (this worker stays healthy: it serves its other data sets), else failed
   * at once. See missing-dataset.ts for the decision, its bound, and why a hand-back. Without `row`
   * (before the claim, see leaveIfUnreadable) nothing is written in Postgres, and a job nobody can
   * run is left to the claim (returns) so that its failure is recorded there.
   */
  private async missingDataset(job: Job, token: string | undefined, row: RowHandle, dataset: DatasetName, missing: DatasetMissingError): Promise<never>;
  private async missingDataset(job: Job, token: string, row: undefined, dataset: DatasetName, missing: DatasetMissingError): Promise<void>;
  private async missingDataset(job: Job, token: string | undefined, row: RowHandle | undefined, dataset: DatasetName, missing: DatasetMissingError): Promise<void> {
    const [workers, counts] = await Promise.all([
      this.write('list live workers', () => this.workers.live(this.env.WORKER_STALE_MS)),
      job.id ? handBacks(this.queue.queue, job.id).catch(() => ({ idle: 0, busy: 0 })) : { idle: 0, busy: 0 },
    ]);
    const decision = missingDatasetDecision({ dataset, workerId: this.identity.id, dataDir: this.env.DDAE_DATA_DIR, missing: missing.message, workers, idleHandBacks: counts.idle, busyHandBacks: counts.busy });
    if (decision.action === 'fail') {
      if (!row) return;
      this.logger.warn(`${row.label}: ${decision.reason}`);
      await this.write('record failure', () => row.fail(decision.reason, true));
      await this.write('refresh sweep', () => row.ended());
      throw new UnrecoverableError(decision.reason);
    }
    const label = row?.label ?? `job ${job.id}`;
    this.logger.log(`${label}: handing it back: ${decision.reason}`);
    if (row) await this.write('hand back row', () => row.fail(`worker ${this.identity.id} handed it back: ${decision.reason}`, false, { handedBack: true }));
    if (!token) throw new Error(`${label}: ${decision.reason}`);
    await this.park(job, token, label, dataset, decision);
  }

  /**
   * Moves a job handed back for its data set to delayed and lists it for a worker that has the data
   * set to wake (parked-jobs.ts). moveToDelayed does not count an attempt (as the concurrency cap's
   * put-off); Redis unreachable: the lock expires and the job comes back as stalled, or the
   * reconciler re-enqueues the row.
   */
  private async park(job: Job, token: string, label: string, dataset: DatasetName, decision: Extract<MissingDatasetDecision, { action: 'hand-back' }>): Promise<never> {
    await recordHandBack(job, this.identity.id, decision.reason, decision.counted).catch((error: Error) => this.logger.warn(`${label}: could not count the hand-back: ${error.message}`));
    const moved = await withTimeout(job.moveToDelayed(Date.now() + decision.delayMs, token), HAND_BACK_TIMEOUT_MS, 'handing the job back to Redis').then(
      () => true,
      (error: Error) => (this.logger.warn(`${label}: ${error.message}`), false),
    );
    if (moved && job.id) await this.parked.park(job.id, dataset).catch((error: Error) => this.logger.warn(`${label}: could not park it for a worker that has ${dataset}: ${error.message}`));
    if (moved && decision.counted) await this.standAside?.(MISSING_DATASET_LIMITS.standAsideMs);
    throw new DelayedError();
  }

  /**
   * Copies the run's sample grid (a PNG of a few KB beside its final checkpoint) into Postgres, so
   * the API serves it without access to the artifact store. Upserted on (run, step).
   */
  private async recordSamples(runId: string, key: string, s: SampleGridInfo, device: string): Promise<void> {
    const png = await readFile(path.resolve(this.artifactRoot, s.path));
    await this.write('record sample grid', () =>
      this.samples.record(runId, {
        step: s.step, path: this.relative(s.path), png, n: s.n, sampler: s.sampler, samplerSteps: s.steps, seed: s.seed,
        width: s.width, height: s.height, seconds: s.seconds, backend: this.identity.backend, device, workerId: this.identity.id,
      }),
    );
    this.logger.log(`run ${key}: ${s.n} samples of step ${s.step} (${s.sampler}, ${s.steps} steps, ${s.seconds.toFixed(1)} s)`);
  }

  /** Stores a run's FID and KID (upserted on run and checkpoint step). */
  private async recordGeneration(runId: string, key: string, g: GenerationQuality, device: string): Promise<void> {
    await this.write('record generation quality', () =>
      this.generation.record(runId, {
        step: g.step, extractor: g.extractor, extractorSha256: g.extractorSha256, fid: g.fid, kidMean: g.kid.mean, kidStd: g.kid.std, kidSubsets: g.kid.subsets,
        kidSubsetSize: g.kid.subsetSize, samples: g.samples, reference: g.reference, referenceCount: g.referenceCount, sampler: g.sampler, samplerSteps: g.steps,
        seed: g.seed, seconds: g.seconds, backend: this.identity.backend, device, workerId: this.identity.id,
      }),
    );
    this.logger.log(`run ${key}: FID (${g.extractor}) ${g.fid.toFixed(2)}, KID ${g.kid.mean.toExponential(2)} ± ${g.kid.std.toExponential(1)} on ${g.samples} samples of step ${g.step} (${g.seconds.toFixed(1)} s)`);
  }

  /**
   * The sweep already runs as many tasks as its maxConcurrency: put the job back for a few seconds
   * without spending an attempt (another sweep's job can take this worker meanwhile).
   */
  private async throttle(job: Job, token?: string): Promise<never> {
    if (!token) throw new Error(`job ${job.id}: its sweep is at its concurrency cap`);
    await job.moveToDelayed(Date.now() + THROTTLE_DELAY_MS, token);
    throw new DelayedError();
  }

  /** A Postgres write that outlives a short outage (see retryWrite). */
  private write<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retryWrite(what, fn, { onRetry: (e, delay) => this.logger.warn(`${what}: ${e.message.split('\n').pop()} (retrying in ${delay} ms)`) });
  }

  private relative(p: string): string {
    return path.isAbsolute(p) ? path.relative(this.artifactRoot, p) : p;
  }
}

/** Rows a claim can take: QUEUED, or RUNNING left behind by a lost worker. */
const OPEN = new Set(['QUEUED', 'RUNNING']);

/** The data set of a job's row when the row is open (`anyStatus`: the row's own status does not matter, e.g. a probe's run). */
function openDataset(row: { status: string; dataset: string } | null, anyStatus = false): DatasetName | undefined {
  return row && (anyStatus || OPEN.has(row.status)) ? (row.dataset as DatasetName) : undefined;
}

/** On a GPU: which one computed the result and the GPU memory tfjs held at its end. */
function onDevice(result: ComputeResult): string {
  const d = result.device;
  if (!d?.gpu) return '';
  const mib = (b: number | undefined) => (b === undefined ? '?' : `${Math.round(b / 2 ** 20)} MiB`);
  return ` on GPU ${d.gpu.index} "${d.gpu.name}" (GPU memory ${mib(d.memory?.gpuBytesUsed)} in use, ${mib(d.memory?.gpuBytesAllocated)} allocated)`;
}

/** An error in one line: a ZodError as its issues (`path: message`), anything else as `name: message`. */
export function describeError(error: unknown): string {
  if (error instanceof z.ZodError) return `ZodError: ${error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`;
  const e = error instanceof Error ? error : new Error(String(error));
  return `${e.name}: ${e.message}`;
}

/** What the classifier reads of a failure: the compute child's serialized error, or a local system error. */
function faultOf(e: Error): FaultError {
  if (e instanceof ComputeError) return e.remote;
  const sys = e as NodeJS.ErrnoException;
  return { name: e.name, message: e.message, ...(typeof sys.code === 'string' ? { code: sys.code } : {}), ...(typeof sys.path === 'string' ? { path: sys.path } : {}) };
}

/** Redis is a boundary too: a payload that does not parse can never succeed. */
function parsePayload<S extends z.ZodType>(schema: S, job: Job): z.infer<S> {
  const parsed = schema.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError(`job ${job.id}: invalid ${job.name} payload: ${parsed.error.message}`);
  return parsed.data;
}

/** A run row's network as task fields: its DiT when the row has one, else its UNet (a row holds exactly one). */
export function runNetwork(run: { unet: unknown; dit: unknown }): { unet: UNetConfig } | { dit: DiTConfig } {
  if (run.dit !== null && run.dit !== undefined) return { dit: ditConfigSchema.required().parse(run.dit) };
  return { unet: unetConfigSchema.required().parse(run.unet) };
}
