import type { Response } from 'express';
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

/**
 * A body that Postgres built as JSON text in its contract's wire form (a repository's `...Json`
 * method; the one-statement reads of a sweep's status and heatmap), sent as it is: no parse, no
 * zod pass and no second serialisation of a few hundred kilobytes per request. What {@link reply}
 * checks at run time, the integration tests of those routes check instead: the body parsed with
 * its schema in strict mode, field for field equal to the reply the API built from row objects.
 */
export function sendJsonText(res: Response, json: string): string {
  res.type('application/json');
  return json;
}
