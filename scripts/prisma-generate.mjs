// Generates the Prisma client (TypeScript source under libs/db/src/generated, kept out of git).
// `prisma generate` never runs the native schema engine, but the CLI insists that one exists and
// tries to download it when absent, which fails offline: point it at any existing file.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (!existsSync('prisma/schema.prisma')) process.exit(0);
const env = { ...process.env };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath;
env.PRISMA_HIDE_UPDATE_MESSAGE = '1';
const result = spawnSync('npx', ['--no-install', 'prisma', 'generate'], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
