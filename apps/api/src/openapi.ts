import { buildOpenApiDocument } from '@ddae/contracts';

/** `npm run -s openapi`: prints the API's OpenAPI document (generated from libs/contracts; no service needed). */
process.stdout.write(`${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`);
