import { preflightProblems, PreflightError } from './preflight';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { createServer, type Server } from 'node:http';
import { Worker, type Job } from 'bullmq';
import { QUEUES } from '@ddae/contracts';
import { withLogContext, type WorkerEnv } from '@ddae/config';
import { readableDatasets } from '@ddae/datasets';
import { WorkerRepository } from '@ddae/db';
import { redisConnection, withTimeout, type RedisOutageWatch } from '@ddae/queue';
import { ComputeProcess } from '../compute/compute-process';
import { ComputeJobsService } from '../jobs/compute-jobs.service';
import { CurrentJob } from './current-job';
import { WorkerHealth } from './worker-health';
import { lockGpu } from './gpu-lock';
import { ParkedJobs } from './parked-jobs';
import { REDIS_WATCH, WORKER_ENV, WorkerIdentity } from './worker-identity';
import { jobResultOf, WorkerMetrics } from './worker-metrics';

/**
 * The worker's life: learn the backend, register, consume the compute queue one job at a time,
 * heartbeat into Postgres (which is also when a cancelled job is noticed), and on shutdown stop
 * taking jobs, let the running child checkpoint, hand its job back and exit. A worker whose
 * environment fails during a job (see environment-fault.ts) hands the job back, stops taking jobs
 * and stays up reporting `unhealthy` with the reason (heartbeat, GET /api/workers, a 503 from its
 * /health) until it is fixed and restarted; it does not exit, so no supervisor restart loop can
 * take jobs on a broken machine (and a restart meets the start-up checks first).
 */
type WorkerState = 'starting' | 'idle' | 'busy' | 'stopping' | 'stopped' | 'unhealthy';

@Injectable()
export class WorkerRuntime implements OnApplicationShutdown {
  private readonly logger = new Logger('Worker');
  private worker?: Worker;
  private heartbeat?: NodeJS.Timeout;
  private stateNow: WorkerState = 'starting';
  private shuttingDown = false;
  /** The heartbeat being written (beats are chained: see beat()). */
  private beating: Promise<void> = Promise.resolve();
  private activeJobId: string | null = null;
  private health?: Server;
  private gpuLock?: { release(): void };
  /** A wake-up of parked jobs in flight (see wakeParked). */
  private waking = false;
  /** When this worker takes jobs again after standing aside (see standAside). */
  private standingAside?: NodeJS.Timeout;

  constructor(
    @Inject(WORKER_ENV) private readonly env: WorkerEnv,
    private readonly identity: WorkerIdentity,
    private readonly current: CurrentJob,
    private readonly workers: WorkerRepository,
    private readonly jobs: ComputeJobsService,
    private readonly fitness: WorkerHealth,
    private readonly metrics: WorkerMetrics,
    private readonly parked: ParkedJobs,
    @Inject(REDIS_WATCH) private readonly redis: RedisOutageWatch,
  ) {
    this.fitness.onUnhealthy((reason) => this.stopConsuming(reason));
    this.jobs.standAside = (ms) => this.standAside(ms);
  }

  private get state(): WorkerState {
    return this.stateNow;
  }

  /** One log line per change of state (with the job taken, when it turns busy). */
  private set state(next: WorkerState) {
    if (next === this.stateNow) return;
    const previous = this.stateNow;
    this.stateNow = next;
    this.logger.log(`${previous} -> ${next}${next === 'busy' && this.activeJobId ? ` (job ${this.activeJobId})` : ''}`);
  }

  /** Whether a shutdown got as far as handing back its job (or had none): safe to exit. */
  get released(): boolean {
    return this.state === 'stopped';
  }

  async start(): Promise<void> {
    // A machine that cannot do the work refuses it, naming the fix, rather than failing each job.
    const problems = await preflightProblems(this.env);
    if (problems.length > 0) throw new PreflightError(problems);
    const probe = await ComputeProcess.probeBackend({ backend: this.env.DDAE_BACKEND, env: this.identity.childEnv() });
    this.identity.chose(probe);
    this.identity.sawDatasets(await readableDatasets());
    // One worker per GPU: a second worker on this GPU stops here, naming the one that holds it.
    if (probe.gpu) this.gpuLock = lockGpu(probe.gpu, this.identity.id);
    this.logger.log(`worker ${this.identity.id}: backend ${probe.backend} (${probe.detail}), device ${this.identity.device}, data sets ${this.identity.datasets.join(', ') || 'none'}`);
    this.state = 'idle';
    const released = await this.workers.releaseHeld(this.identity.id);
    if (released > 0) this.logger.warn(`handed back ${released} task(s) a previous process with id ${this.identity.id} left running`);
    await this.beat();
    await this.wakeParked();
    this.heartbeat = setInterval(() => void this.tick(), this.env.HEARTBEAT_MS);
    // A job handed back or put off (WaitingError, DelayedError) emits neither 'completed' nor
    // 'failed': the worker's state follows the processor itself.
    const processor = (job: Job, token?: string) => {
      const startedAt = Date.now();
      this.metrics.jobStarted(job);
      // Every line logged for the job carries its id (and its sweep and run, once claimed).
      return withLogContext({ jobId: job.id, jobKind: job.name }, () => this.jobs.process(job, token))
        .then(
          (outcome) => (this.metrics.jobEnded(job.name, jobResultOf(outcome), startedAt), outcome),
          (error: Error) => {
            this.metrics.jobEnded(job.name, jobResultOf(error), startedAt);
            throw error;
          },
        )
        .finally(() => {
          this.activeJobId = null;
          this.state = this.afterJob();
          // Idle (and said so): jobs parked by workers that lack their data set are this one's to take.
          void this.beat().then(() => this.wakeParked());
        });
    };
    this.worker = new Worker(QUEUES.compute, processor, {
      connection: redisConnection(this.env.REDIS_URL, 'worker'),
      prefix: this.env.QUEUE_PREFIX,
      concurrency: 1,
      lockDuration: this.env.LOCK_DURATION_MS,
      stalledInterval: this.env.STALLED_INTERVAL_MS,
      autorun: this.env.WORKER_AUTORUN,
      name: this.identity.id,
    });
    this.worker.on('active', (job) => {
      this.activeJobId = job.id ?? null;
      this.state = 'busy';
      void this.beat();
    });
    this.worker.on('completed', (job) => {
      this.state = this.afterJob();
      this.activeJobId = null;
      this.logger.debug(`job ${job.id} completed: ${JSON.stringify(job.returnvalue)}`);
    });
    this.worker.on('failed', (job, error) => {
      this.state = this.afterJob();
      this.activeJobId = null;
      // Handed back (shutdown) or put off (concurrency cap): not failures.
      if (error.name !== 'WaitingError' && error.name !== 'DelayedError') this.logger.warn(`job ${job?.id} failed: ${error.message}`);
    });
    // A connection error is the outage's (one line down, one up); anything else is news.
    this.worker.on('error', (error) => this.redis.error(error) || this.logger.warn(`queue error: ${error.message}`));
    if (this.env.HEALTH_PORT >= 0) this.serveHealth(this.env.HEALTH_PORT);
  }

  /** The state once a job has ended: stopping, unhealthy (it takes no more) or idle. */
  private afterJob(): 'stopping' | 'unhealthy' | 'idle' {
    if (this.shuttingDown) return 'stopping';
    return this.fitness.reason === undefined ? 'idle' : 'unhealthy';
  }

  /**
   * An environment fault: take no more jobs (the running one is being handed back), say so at once.
   * `pause(true)` does not wait for the active job: it is the caller, handing itself back.
   */
  private async stopConsuming(reason: string): Promise<void> {
    this.logger.error(`unhealthy, taking no more jobs: ${reason}`);
    if (!this.shuttingDown) this.state = 'unhealthy';
    await this.worker?.pause(true);
    await this.beat();
  }

  /**
   * Fetches no job for `ms` (the job in hand, being handed back to an idle worker that can run it,
   * finishes as usual), then takes jobs again, unless it is stopping or unhealthy by then.
   * `pause(true)`: the caller is that job.
   */
  private async standAside(ms: number): Promise<void> {
    if (!this.worker || this.standingAside || this.shuttingDown || this.fitness.reason !== undefined) return;
    const worker = this.worker;
    this.standingAside = setTimeout(() => {
      this.standingAside = undefined;
      if (!this.shuttingDown && this.fitness.reason === undefined) void worker.resume();
    }, ms);
    await worker.pause(true);
  }

  /**
   * GET /health on its own port: 200 while the worker runs, 503 once it is stopping or unhealthy
   * (with the reason); GET /metrics: its Prometheus metrics (worker-metrics.ts).
   */
  private serveHealth(port: number): void {
    this.health = createServer((req, res) => {
      if (req.url === '/metrics') {
        this.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text),
          (error: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(error.message),
        );
        return;
      }
      const ok = this.state !== 'stopping' && this.state !== 'stopped' && this.fitness.reason === undefined;
      res.writeHead(req.url === '/health' ? (ok ? 200 : 503) : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: this.identity.id, state: this.state, unhealthyReason: this.fitness.reason ?? null, datasets: this.identity.datasets, backend: this.identity.backend, device: this.identity.device, currentJobId: this.activeJobId }));
    });
    this.health.listen(port, () => {
      const address = this.health?.address();
      this.logger.log(`health on port ${typeof address === 'object' && address ? address.port : port}`);
    });
  }

  private async tick(): Promise<void> {
    await this.beat();
    await this.wakeParked();
    const running = this.current.get();
    if (!running) return;
    const status = await running.status().catch(() => null);
    if (status === 'CANCELLED') {
      this.logger.log(`${running.label} was cancelled: stopping its child`);
      running.child.stop('cancelled', this.env.SHUTDOWN_GRACE_MS);
    }
  }

  /**
   * While idle: wakes the job parked longest by a worker lacking its data set for a worker that can
   * read it (parked-jobs.ts), so it runs here now rather than after its hand-back's delay. At each
   * turn to idle and at each heartbeat (a job parked just as this worker turned idle).
   */
  private async wakeParked(): Promise<void> {
    // One wake-up at a time (a turn to idle and a heartbeat can meet): it wakes one job, which this worker then takes.
    if (this.waking || this.state !== 'idle' || this.identity.datasets.length === 0) return;
    this.waking = true;
    await this.parked
      .wake(this.identity.datasets)
      .then(
        (ids) => ids.length > 0 && this.logger.log(`woke job ${ids.join(', ')}, handed back for a data set this worker has`),
        (error: Error) => this.logger.warn(`could not wake parked jobs: ${error.message}`),
      )
      .finally(() => (this.waking = false));
  }

  /**
   * One heartbeat at a time, each writing the state as it is when its turn comes: a periodic beat
   * still in flight at shutdown can then never land after the last one and undo its `stopped`.
   */
  private beat(): Promise<void> {
    this.beating = this.beating.then(() => this.writeBeat());
    return this.beating;
  }

  private async writeBeat(): Promise<void> {
    // What it can read now: a data set installed (or removed) since start shows in the next beat. A
    // hung mount must not hold the beat: the last answer stands meanwhile.
    await withTimeout(readableDatasets(), 2 * this.env.HEARTBEAT_MS, 'looking at the data sets').then(
      (names) => this.identity.sawDatasets(names),
      (error: Error) => this.logger.warn(`could not look at the data sets: ${error.message}`),
    );
    const write = this.workers.beat({
      id: this.identity.id,
      hostname: this.identity.hostname,
      pid: this.identity.pid,
      backend: this.identity.backend,
      device: this.identity.device,
      state: this.state,
      currentJobId: this.activeJobId,
      unhealthyReason: this.fitness.reason ?? null,
      datasets: this.identity.datasets,
      gpuMemory: this.identity.gpuMemory ?? null,
    });
    // A write that hangs (a partitioned database) must not hold every later beat behind it.
    await withTimeout(write, 2 * this.env.HEARTBEAT_MS, 'heartbeat').catch((error: Error) => this.logger.warn(`heartbeat failed: ${error.message}`));
  }

  async onApplicationShutdown(signal?: string): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    clearTimeout(this.standingAside);
    this.state = 'stopping';
    this.logger.log(`stopping${signal ? ` on ${signal}` : ''}`);
    // Everything below fits in the grace period, Redis reachable or not (close() can hang without it).
    const deadline = Date.now() + this.env.SHUTDOWN_GRACE_MS;
    const left = (reserveMs: number) => Math.max(0, deadline - Date.now() - reserveMs);
    const running = this.current.get();
    // Stop the child first: it checkpoints, the job is handed back, then close() can return. It gets
    // the grace period less a margin for the hand-back, the close and the last heartbeat.
    running?.child.stop('worker shutdown', Math.max(1_000, this.env.SHUTDOWN_GRACE_MS - 3_000));
    if (this.worker) {
      const worker = this.worker;
      await withTimeout(worker.close(), left(1_500), 'worker close').catch(async (error: Error) => {
        this.logger.warn(error.message);
        running?.child.kill();
        await withTimeout(worker.close(true), 500, 'forced worker close').catch(() => undefined);
      });
    }
    // The warm compute child, idle now (a running one was stopped above): it leaves with the worker.
    this.jobs.closeCompute();
    clearInterval(this.heartbeat);
    this.health?.close();
    this.gpuLock?.release();
    this.state = 'stopped';
    // After any beat still in flight (chained), so `stopped` is the last state written.
    await withTimeout(this.beat(), Math.max(left(0), 1_000), 'last heartbeat').catch(() => undefined);
  }
}
