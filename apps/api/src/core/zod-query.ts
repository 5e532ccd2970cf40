import type { z } from 'zod';
import { formatPath } from '@ddae/sweeps';
import { ApiError } from './api-error';

/** Parses a query string, path parameter or header with a schema; 400 naming each bad field. */
export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ApiError(
    'invalid_request',
    `invalid ${where}`,
    parsed.error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message })),
  );
}

export { formatPath };
