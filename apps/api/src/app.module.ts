import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { AuthGuard } from './core/auth.guard';
import { createServiceLogger, type ApiEnv } from '@ddae/config';
import { LoggerModule } from 'nestjs-pino';
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
      imports: [CoreModule.forRoot(env), ...(env.LOG_FORMAT === 'json' ? [jsonLogs(env)] : [])],
      controllers: [SweepsController, SweepResultsController, SweepEventsController, LeaderboardController, WorkersController, HealthController, MetricsController, WebController],
      providers: [{ provide: APP_FILTER, useClass: ErrorFilter }, { provide: APP_GUARD, useClass: AuthGuard }, { provide: APP_INTERCEPTOR, useClass: QueryContractInterceptor }, ReconcilerService, SweepIdResolver, ApiMetrics, RedisConfigCheck],
    };
  }
}

/**
 * LOG_FORMAT=json: Nest's logs and one line per request through pino (nestjs-pino): reads at debug
 * (a dashboard polls), writes at info (they change state), 4xx at warn, 5xx at error; probes and
 * scrapes (/health, /metrics) not at all. Authorization headers and credentials are redacted.
 */
function jsonLogs(env: ApiEnv): DynamicModule {
  return LoggerModule.forRoot({
    pinoHttp: {
      logger: createServiceLogger({ level: env.LOG_LEVEL, base: { service: 'api' } }),
      autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/metrics' },
      customLogLevel: (req, res, error) => (error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : req.method === 'GET' || req.method === 'HEAD' ? 'debug' : 'info'),
      quietReqLogger: true,
      // The sweep a request is about, as a field of its line (`:id` once the route matched).
      customProps: (req) => {
        const id = (req as { params?: Record<string, unknown> }).params?.['id'];
        return typeof id === 'string' ? { sweepId: id } : {};
      },
    },
  });
}
