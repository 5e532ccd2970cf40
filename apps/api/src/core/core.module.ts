import { Global, Inject, Logger, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { ApiEnv } from '@ddae/config';
import { createPrismaClient } from '@ddae/db';
import { ComputeQueue, RedisOutageWatch } from '@ddae/queue';
import { createSweepServices, serviceProviders } from '@ddae/sweeps';
import { API_ENV, COMPUTE_QUEUE, PRISMA, REDIS_WATCH, SERVICES } from './tokens';

/**
 * Wires the plain library classes (Prisma repositories, the queue producer, the orchestrator)
 * into Nest. The API only produces jobs: no processor is ever registered here.
 */
@Global()
@Module({})
export class CoreModule implements OnApplicationShutdown {
  static forRoot(env: ApiEnv): DynamicModule {
    const providers: Provider[] = [
      { provide: API_ENV, useValue: env },
      { provide: PRISMA, useFactory: () => createPrismaClient(env.DATABASE_URL) },
      // A Redis outage is one line when it starts and one when it ends, not one per reconnection.
      { provide: REDIS_WATCH, useFactory: () => new RedisOutageWatch(env.REDIS_URL, new Logger('Redis')) },
      {
        provide: COMPUTE_QUEUE,
        useFactory: (watch: RedisOutageWatch) => new ComputeQueue({ redisUrl: env.REDIS_URL, prefix: env.QUEUE_PREFIX, onError: (e) => watch.error(e) || new Logger('Queue').warn(`queue error: ${e.message}`) }),
        inject: [REDIS_WATCH],
      },
      { provide: SERVICES, useFactory: createSweepServices, inject: [PRISMA, COMPUTE_QUEUE] },
      ...serviceProviders(SERVICES),
    ];
    return { module: CoreModule, providers, exports: providers.map((p) => (p as { provide: unknown }).provide as symbol) };
  }

  constructor(
    @Inject(PRISMA) private readonly prisma: { $disconnect(): Promise<void> },
    @Inject(COMPUTE_QUEUE) private readonly queue: ComputeQueue,
    @Inject(REDIS_WATCH) private readonly watch: RedisOutageWatch,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    this.watch.close();
    await Promise.allSettled([this.queue.close(), this.prisma.$disconnect()]);
  }
}
