import { defineConfig } from 'prisma/config';

// The datasource URL lives here (Prisma 7); migrations are applied offline by libs/migrations
// (`npm run -s migrate -- deploy|dev|status|diff`), which also lints and typechecks this file.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/ddae' },
});
