import { apiEnvSchema, loadEnv } from '@ddae/config';
import { apiLogger, createApiApp } from './bootstrap';

async function main(): Promise<void> {
  const env = loadEnv(apiEnvSchema);
  const app = await createApiApp(env);
  await app.listen(env.PORT, env.HOST);
  apiLogger.log(`listening on http://${env.HOST}:${env.PORT} (OpenAPI at /api/docs)`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
