/** Discrete pg connection fields parsed from a postgresql:// URL. */
export interface PgConnectionFields {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

export { DEFAULT_DATABASE_URL } from '@ddae/config';

/**
 * Parses a `postgresql://user:password@host:port/database` URL into discrete fields.
 * Discrete fields (not `connectionString`) are what the pg adapters are given everywhere: pg lets a
 * `connectionString` override `database`, which is how adapter-pg 7.10's shadow-database helper
 * ends up on the main database.
 */
export function parseDatabaseUrl(databaseUrl: string): PgConnectionFields {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new Error(`Invalid DATABASE_URL (expected postgresql://user@host:port/db): ${redactUrl(databaseUrl)}`);
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') {
    throw new Error(`DATABASE_URL must start with postgresql:// (got ${url.protocol}//)`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database) throw new Error(`DATABASE_URL names no database: ${redactUrl(databaseUrl)}`);
  const fields: PgConnectionFields = {
    host: decodeURIComponent(url.hostname) || '127.0.0.1',
    port: url.port ? Number(url.port) : 5432,
    user: decodeURIComponent(url.username) || 'postgres',
    database,
  };
  if (url.password) fields.password = decodeURIComponent(url.password);
  return fields;
}

/** The same server and credentials, another database. */
export function withDatabase(fields: PgConnectionFields, database: string): PgConnectionFields {
  return { ...fields, database };
}

/** Formats fields back into a URL (no password unless asked). */
export function formatDatabaseUrl(fields: PgConnectionFields, includePassword = true): string {
  const auth =
    encodeURIComponent(fields.user) +
    (includePassword && fields.password !== undefined ? `:${encodeURIComponent(fields.password)}` : '');
  return `postgresql://${auth}@${fields.host}:${fields.port}/${encodeURIComponent(fields.database)}`;
}

export function redactUrl(databaseUrl: string): string {
  return databaseUrl.replace(/(\/\/[^:/@]+):[^@]*@/, '$1:***@');
}

/** Quotes a Postgres identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
