import { createHash, randomBytes } from 'node:crypto';
import type { ApiToken, PrismaClient } from '../generated/client';

/** What a token may do; each scope includes the ones before it. */
export const TOKEN_SCOPES = ['read', 'submit', 'admin'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Whether a token of scope `has` may do what needs `needs`. */
export function scopeAllows(has: string, needs: TokenScope): boolean {
  const rank = TOKEN_SCOPES.indexOf(has as TokenScope);
  return rank >= 0 && rank >= TOKEN_SCOPES.indexOf(needs);
}

export class TokenRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Creates a token; the plaintext is returned once and never stored. */
  async create(name: string, scope: TokenScope): Promise<{ token: string; row: ApiToken }> {
    const token = `ddae_${randomBytes(24).toString('base64url')}`;
    const row = await this.prisma.apiToken.create({ data: { name, scope, hash: hashToken(token), prefix: token.slice(0, 10) } });
    return { token, row };
  }

  /** The live token row for a presented token, or null (unknown or revoked). */
  async verify(token: string): Promise<ApiToken | null> {
    const row = await this.prisma.apiToken.findUnique({ where: { hash: hashToken(token) } });
    if (!row || row.revokedAt) return null;
    // Best effort: an audit hint, not worth failing a request over.
    void this.prisma.apiToken.update({ where: { id: row.id }, data: { lastUsedAt: new Date() } }).catch(() => undefined);
    return row;
  }

  async revoke(idOrPrefix: string): Promise<number> {
    const where = /^[0-9a-f-]{36}$/.test(idOrPrefix) ? { id: idOrPrefix } : { prefix: idOrPrefix };
    const { count } = await this.prisma.apiToken.updateMany({ where: { ...where, revokedAt: null }, data: { revokedAt: new Date() } });
    return count;
  }

  list(): Promise<ApiToken[]> {
    return this.prisma.apiToken.findMany({ orderBy: { createdAt: 'asc' } });
  }
}
