import { CliError, UsageError } from '../api-client';
import { table } from '../table';

const SCOPES = ['read', 'submit', 'admin'] as const;

/**
 * `token create|list|revoke`: API tokens are managed straight in Postgres (DATABASE_URL), by
 * whoever can reach the database; the API itself never hands out tokens.
 */
export async function tokenCommand(sub: string | undefined, arg: string | undefined, opts: { name?: string; scope?: string; json: boolean; databaseUrl: string }): Promise<string> {
  const { createPrismaClient, TokenRepository } = await import('@ddae/db');
  const prisma = createPrismaClient(opts.databaseUrl, { max: 1 });
  try {
    const tokens = new TokenRepository(prisma);
    switch (sub) {
      case 'create': {
        const scope = (opts.scope ?? 'submit') as (typeof SCOPES)[number];
        if (!SCOPES.includes(scope)) throw new UsageError(`--scope must be one of ${SCOPES.join(', ')} (got "${opts.scope}")`);
        const { token, row } = await tokens.create(opts.name ?? 'cli', scope);
        process.stderr.write(`created token "${row.name}" (${row.scope}, id ${row.id}); it is shown once, keep it now\n`);
        return opts.json ? JSON.stringify({ id: row.id, name: row.name, scope: row.scope, token }) : token;
      }
      case 'list': {
        const rows = await tokens.list();
        if (opts.json) return JSON.stringify(rows.map(({ hash: _hash, ...r }) => r));
        return table(['id', 'name', 'scope', 'prefix', 'created', 'last used', 'revoked'], rows.map((r) => [r.id, r.name, r.scope, r.prefix, r.createdAt.toISOString(), r.lastUsedAt?.toISOString(), r.revokedAt?.toISOString()]));
      }
      case 'revoke': {
        if (!arg) throw new UsageError('token revoke needs a token id or prefix: npm run ddae -- token revoke <id|prefix> (see token list)');
        const n = await tokens.revoke(arg);
        if (n === 0) throw new CliError(`no live token with id or prefix "${arg}" (see npm run ddae -- token list)`);
        return opts.json ? JSON.stringify({ revoked: n }) : `revoked ${n} token(s)`;
      }
      default:
        throw new UsageError(`unknown token command "${sub ?? ''}": use create, list or revoke`);
    }
  } finally {
    await prisma.$disconnect();
  }
}
