import { defineConfig } from 'prisma/config';

// The datasource URL lives here (Prisma 7); migrations are applied offline by prisma/migrate.ts.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/ddae' },
});
