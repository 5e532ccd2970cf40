import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { AuthGuard } from './core/auth.guard';
import type { ApiEnv } from '@ddae/config';
import { CoreModule } from './core/core.module';
import { ErrorFilter } from './core/error.filter';
import { QueryContractInterceptor } from './core/query-contract.interceptor';
import { ReconcilerService } from './core/reconciler.service';
import { HealthController } from './health/health.controller';
import { MetricsController } from './health/metrics.controller';
import { ApiMetrics } from './core/metrics';
import { RedisConfigCheck } from './core/redis-check.service';
import { LeaderboardController } from './leaderboard/leaderboard.controller';
import { SweepEventsController } from './sweeps/sweep-events.controller';
import { SweepIdResolver } from './sweeps/sweep-id';
import { SweepResultsController } from './sweeps/sweep-results.controller';
import { SweepsController } from './sweeps/sweeps.controller';
import { WebController } from './web/web.controller';
import { WorkersController } from './workers/workers.controller';

@Module({})
export class AppModule {
  static forRoot(env: ApiEnv): DynamicModule {
    return {
      module: AppModule,
      imports: [CoreModule.forRoot(env)],
      controllers: [SweepsController, SweepResultsController, SweepEventsController, LeaderboardController, WorkersController, HealthController, MetricsController, WebController],
      providers: [{ provide: APP_FILTER, useClass: ErrorFilter }, { provide: APP_GUARD, useClass: AuthGuard }, { provide: APP_INTERCEPTOR, useClass: QueryContractInterceptor }, ReconcilerService, SweepIdResolver, ApiMetrics, RedisConfigCheck],
    };
  }
}
