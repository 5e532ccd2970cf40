import { z } from 'zod';
import { sweepSpecSchema } from '../sweep-spec.schema';
import { apiErrorSchema } from './api-error.schema';
import { API_OPERATIONS, type ApiOperation } from './api-operations';

type JsonObject = Record<string, unknown>;

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'invalid request: every bad field by path in issues (an unknown or repeated query parameter included)',
  401: 'no API token, or an unknown or revoked one',
  403: 'the token lacks the scope this operation needs',
  404: 'no such sweep (or run)',
  409: 'a conflict: a short id several sweeps share (candidates listed), an Idempotency-Key used for another spec, a cancelled sweep',
  413: 'the body is larger than BODY_LIMIT',
  415: 'the body is neither application/json nor application/yaml',
  500: 'internal error: errorId names it in the log, no internals in the body',
  503: 'a dependency is down',
};

/** JSON Schema (2020-12, the dialect of OpenAPI 3.1) of a zod schema, as it is on the wire. */
const schemaOf = (schema: z.ZodType, io: 'input' | 'output' = 'output'): JsonObject => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonObject;
  return rest;
};

/** The error statuses of an operation: its own, 401/403 where a token may be needed, 500 always. */
export function errorStatusesOf(op: ApiOperation): number[] {
  const statuses = new Set(op.errors);
  if (op.scope !== 'public') {
    statuses.add(401);
    statuses.add(403);
  }
  statuses.add(500);
  return [...statuses].sort((a, b) => a - b);
}

function parametersOf(op: ApiOperation): JsonObject[] {
  const params: JsonObject[] = Object.entries(op.pathParams ?? {}).map(([name, description]) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } }));
  if (op.query) {
    const q = schemaOf(op.query, 'input') as { properties?: Record<string, JsonObject>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {})) {
      const { description, ...rest } = schema;
      params.push({ name, in: 'query', required: q.required?.includes(name) ?? false, ...(description ? { description } : {}), schema: rest });
    }
  }
  for (const h of op.headers ?? []) params.push({ name: h.name, in: 'header', required: false, description: h.description, schema: { type: 'string' } });
  return params;
}

/**
 * The OpenAPI 3.1 document of the REST API, generated from the operations table and its zod
 * schemas: every operation with its success and error responses (one error shape), its query
 * parameters, both body types of a sweep spec, and bearer auth with an opaque token.
 */
export function buildOpenApiDocument(version = '1'): JsonObject {
  const schemas: Record<string, JsonObject> = { ApiError: schemaOf(apiErrorSchema), SweepSpec: schemaOf(sweepSpecSchema, 'input') };
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const op of API_OPERATIONS) {
    const responses: Record<string, JsonObject> = {};
    for (const [status, r] of Object.entries(op.responses)) {
      if ('schema' in r) {
        schemas[r.name] ??= schemaOf(r.schema);
        responses[status] = { description: r.description, content: { 'application/json': { schema: ref(r.name) } } };
      } else if ('mediaType' in r) {
        responses[status] = { description: r.description, content: { [r.mediaType]: { schema: r.binary ? { type: 'string', contentMediaType: r.mediaType } : { type: 'string' } } } };
      } else {
        responses[status] = { description: r.description };
      }
    }
    for (const status of errorStatusesOf(op)) {
      responses[String(status)] ??= { description: ERROR_DESCRIPTIONS[status] ?? 'error', content: { 'application/json': { schema: ref('ApiError') } } };
    }
    const operation: JsonObject = {
      operationId: op.operationId,
      tags: [op.tag],
      summary: op.summary,
      parameters: parametersOf(op),
      responses,
      // submit: a token is required (unless API_AUTH=off); read: only when API_AUTH=all; public: never.
      security: op.scope === 'submit' ? [{ bearer: [] }] : op.scope === 'read' ? [{ bearer: [] }, {}] : [],
    };
    if (op.body === 'sweep-spec') {
      operation.requestBody = {
        required: true,
        content: {
          'application/json': { schema: ref('SweepSpec') },
          'application/yaml': { schema: { type: 'string', contentMediaType: 'application/yaml', description: 'the same document as YAML' } },
        },
      };
    }
    (paths[op.path] ??= {})[op.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'DDAE sweeps', description: 'Submit sweeps of diffusion pretraining and linear probing; read the leaderboard.', version },
    tags: [{ name: 'sweeps' }, { name: 'leaderboard' }, { name: 'workers' }, { name: 'health' }, { name: 'page' }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'An opaque API token (not a JWT): create one with `npm run ddae -- token create --scope read|submit|admin`; the API stores only its hash.',
        },
      },
    },
  };
}
