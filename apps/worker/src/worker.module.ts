import { Inject, Logger, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { WorkerEnv } from '@ddae/config';
import { createPrismaClient, type PrismaClient } from '@ddae/db';
import { ComputeQueue, RedisOutageWatch, withTimeout } from '@ddae/queue';
import { createSweepServices, serviceProviders } from '@ddae/sweeps';
import { CurrentJob } from './core/current-job';
import { WorkerHealth } from './core/worker-health';
import { COMPUTE_QUEUE, PRISMA, REDIS_WATCH, WORKER_ENV, WorkerIdentity } from './core/worker-identity';
import { WorkerMetrics } from './core/worker-metrics';
import { ParkedJobs } from './core/parked-jobs';
import { WorkerRuntime } from './core/worker-runtime.service';
import { ComputeJobsService } from './jobs/compute-jobs.service';

const SERVICES = Symbol('SERVICES');

/** The worker: no HTTP, BullMQ consumption and the compute child it drives. */
@Module({})
export class WorkerModule implements OnApplicationShutdown {
  static forRoot(env: WorkerEnv): DynamicModule {
    const providers: Provider[] = [
      { provide: WORKER_ENV, useValue: env },
      { provide: PRISMA, useFactory: () => createPrismaClient(env.DATABASE_URL) },
      { provide: REDIS_WATCH, useFactory: () => new RedisOutageWatch(env.REDIS_URL, new Logger('Redis')) },
      {
        provide: COMPUTE_QUEUE,
        useFactory: (watch: RedisOutageWatch) => new ComputeQueue({ redisUrl: env.REDIS_URL, prefix: env.QUEUE_PREFIX, onError: (e) => watch.error(e) || new Logger('Queue').warn(`queue error: ${e.message}`) }),
        inject: [REDIS_WATCH],
      },
      { provide: ParkedJobs, useFactory: (queue: ComputeQueue) => new ParkedJobs(queue.queue), inject: [COMPUTE_QUEUE] },
      { provide: SERVICES, useFactory: createSweepServices, inject: [PRISMA, COMPUTE_QUEUE] },
      ...serviceProviders(SERVICES),
      { provide: WorkerIdentity, useValue: new WorkerIdentity({ id: env.WORKER_ID, device: env.DEVICE, cudaVisibleDevices: env.CUDA_VISIBLE_DEVICES, gpu: env.DDAE_GPU }) },
      CurrentJob,
      WorkerHealth,
      WorkerMetrics,
      ComputeJobsService,
      WorkerRuntime,
    ];
    return { module: WorkerModule, providers };
  }

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(COMPUTE_QUEUE) private readonly queue: ComputeQueue,
    @Inject(REDIS_WATCH) private readonly watch: RedisOutageWatch,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    this.watch.close();
    // Bounded: with Redis unreachable the queue's close (and even its disconnect) can wait forever.
    await withTimeout(Promise.allSettled([this.queue.close(1_000), this.prisma.$disconnect()]), 2_000, 'closing connections').catch(() => undefined);
  }
}
