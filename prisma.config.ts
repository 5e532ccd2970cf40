import { defineConfig } from 'prisma/config';
import { DEFAULT_DATABASE_URL, rawEnv } from './libs/config/src/process-env';

// The datasource URL lives here (Prisma 7); migrations are applied offline by libs/migrations
// (`npm run -s migrate -- deploy|dev|status|diff`), which also lints and typechecks this file.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: rawEnv()['DATABASE_URL'] ?? DEFAULT_DATABASE_URL },
});
