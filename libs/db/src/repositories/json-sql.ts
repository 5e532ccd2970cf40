import { Prisma } from '../generated/client';

/**
 * SQL fragments for replies that Postgres builds as JSON text (json_build_object / json_agg), so
 * that a read of a few thousand rows is one round trip and one string, with no row objects in the
 * API. Each fragment writes a value exactly as `JSON.stringify` writes its JavaScript counterpart.
 */

/** A timestamp(3) column as `Date.prototype.toISOString` writes it (`2026-12-01T03:17:20.123Z`); NULL stays null. */
export const isoInstant = (column: Prisma.Sql): Prisma.Sql =>
  Prisma.sql`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * A double precision column as JSON.stringify writes a number: NaN and +-Infinity become null
 * (to_json would write them as the strings "NaN" and "Infinity").
 */
export const finiteNumber = (column: Prisma.Sql): Prisma.Sql =>
  Prisma.sql`CASE WHEN ${column} IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) THEN NULL ELSE ${column} END`;

/** A stored label budget (NULL: all images) as the API writes it: the count, or the string `all` (labelBudgetOf of libs/contracts). */
export const labelBudget = (column: Prisma.Sql): Prisma.Sql => Prisma.sql`COALESCE(to_json(${column}), '"all"'::json)`;
