import type { z } from 'zod';

/** A response body that does not match its contract: a bug of the API, answered as a 500. */
export class ContractViolation extends Error {
  override readonly name = 'ContractViolation';
}

/**
 * The body a handler sends, parsed with its contract schema (libs/contracts) in its wire form
 * (JSON: dates as ISO strings), so that what leaves the API is what the OpenAPI document and the
 * clients say. A body that does not match is a 500 whose log names the bad fields.
 */
export function reply<S extends z.ZodType>(schema: S, body: z.input<S> | object): z.output<S> {
  const wire: unknown = JSON.parse(JSON.stringify(body));
  const parsed = schema.safeParse(wire);
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  throw new ContractViolation(`response does not match its contract: ${fields}`);
}
