import { apiEnvSchema, loadEnv } from '@ddae/config';
import { apiLogger, createApiApp } from './bootstrap';

async function main(): Promise<void> {
  const env = loadEnv(apiEnvSchema);
  const app = await createApiApp(env);
  // Close cleanly on SIGTERM/SIGINT (shutdown hooks close the queue and Prisma), then exit 0.
  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    apiLogger.log(`received ${signal}`);
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  await app.listen(env.PORT, env.HOST);
  apiLogger.log(`listening on http://${env.HOST}:${env.PORT} (OpenAPI at /api/docs)`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
