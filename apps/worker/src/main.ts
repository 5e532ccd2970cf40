import 'reflect-metadata';
import { Logger, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadEnv, workerEnvSchema } from '@ddae/config';
import { WorkerModule } from './worker.module';
import { WorkerRuntime } from './core/worker-runtime.service';

const LEVELS: LogLevel[] = ['error', 'warn', 'log', 'debug', 'verbose'];

async function main(): Promise<void> {
  const env = loadEnv(workerEnvSchema);
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(env), {
    logger: LEVELS.slice(0, LEVELS.indexOf(env.LOG_LEVEL) + 1),
  });
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  await app.get(WorkerRuntime).start();
}

main().catch((error: unknown) => {
  new Logger('Worker').error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
