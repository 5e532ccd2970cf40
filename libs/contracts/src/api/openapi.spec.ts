import { API_OPERATIONS } from './api-operations';
import { buildOpenApiDocument, errorStatusesOf } from './openapi';

type Op = { parameters: { name: string; in: string }[]; responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>; security: unknown[]; requestBody?: { content: Record<string, unknown> } };

describe('the OpenAPI document', () => {
  const doc = buildOpenApiDocument() as { paths: Record<string, Record<string, Op>>; components: { schemas: Record<string, unknown>; securitySchemes: Record<string, Record<string, unknown>> } };
  const op = (path: string, method: string): Op => doc.paths[path][method];

  it('gives every operation a success response and the one error shape for each error status', () => {
    for (const o of API_OPERATIONS) {
      const responses = op(o.path, o.method).responses;
      expect(Object.keys(responses).some((s) => Number(s) < 400)).toBe(true);
      for (const status of errorStatusesOf(o)) {
        if (o.operationId === 'health') continue;
        expect([o.operationId, status, responses[status]?.content?.['application/json']?.schema.$ref]).toEqual([o.operationId, status, '#/components/schemas/ApiError']);
      }
      for (const r of Object.values(responses)) {
        const ref = r.content?.['application/json']?.schema.$ref;
        if (ref) expect(doc.components.schemas[ref.split('/').pop() ?? '']).toBeDefined();
      }
    }
  });

  it('lists query parameters, both body types and an opaque bearer token', () => {
    expect(op('/api/sweeps', 'get').parameters.map((p) => p.name)).toEqual(['limit', 'status', 'before']);
    expect(op('/api/leaderboard', 'get').parameters.map((p) => p.name)).toEqual(['dataset', 'method', 'sweep', 'per', 'limit', 'cursor', 'labels', 'protocol']);
    expect(op('/api/sweeps/{id}/heatmap', 'get').parameters.map((p) => p.name)).toEqual(['id', 'labels']);
    expect(Object.keys(op('/api/sweeps', 'post').requestBody?.content ?? {})).toEqual(['application/json', 'application/yaml']);
    expect(Object.keys(op('/api/sweeps', 'post').responses)).toEqual(expect.arrayContaining(['200', '201', '202', '400', '401', '403', '409', '413', '415', '500']));
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.securitySchemes.bearer.bearerFormat).toBeUndefined();
    expect(op('/api/sweeps/{id}/cancel', 'post').security).toEqual([{ bearer: [] }]);
    expect(op('/health', 'get').security).toEqual([]);
    expect(Object.keys(op('/health', 'get').responses)).toEqual(['200', '500', '503']);
  });
});
