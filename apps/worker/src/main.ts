import 'reflect-metadata';
import { hostname } from 'node:os';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createServiceLogger, loadEnv, nestLogLevels, PinoNestLogger, workerEnvSchema } from '@ddae/config';
import { WorkerModule } from './worker.module';
import { WorkerRuntime } from './core/worker-runtime.service';

async function main(): Promise<void> {
  const env = loadEnv(workerEnvSchema);
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(env), {
    // LOG_FORMAT=json: pino, every line with the worker's id (and a job's ids while it runs).
    logger:
      env.LOG_FORMAT === 'json'
        ? new PinoNestLogger(createServiceLogger({ level: env.LOG_LEVEL, base: { service: 'worker', worker: env.WORKER_ID ?? `${hostname()}-${process.pid}` } }))
        : nestLogLevels(env.LOG_LEVEL),
  });
  // Our own signal handling (not Nest's, which re-raises the signal): close the app, which stops
  // taking jobs, lets the running child checkpoint and hands its job back, then exit with 0.
  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    new Logger('Worker').log(`received ${signal}`);
    // The grace period is a promise to the orchestrator (Kubernetes kills at its own deadline):
    // whatever still hangs then (a close that waits for an unreachable Redis) is cut short. The
    // job was handed back in Postgres by then; exit 0 only when the runtime says so.
    const runtime = app.get(WorkerRuntime);
    setTimeout(() => {
      new Logger('Worker').warn(`shutdown still busy after ${env.SHUTDOWN_GRACE_MS} ms: exiting (${runtime.released ? 'its job was handed back' : 'its job was NOT handed back'})`);
      process.exit(runtime.released ? 0 : 1);
    }, env.SHUTDOWN_GRACE_MS).unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        new Logger('Worker').error(`shutdown failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  await app.get(WorkerRuntime).start();
}

main().catch((error: unknown) => {
  new Logger('Worker').error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
