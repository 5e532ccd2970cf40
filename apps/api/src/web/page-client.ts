/**
 * The web page's one way to the API, run in the browser: bundled by page-bundle.ts into an IIFE
 * inlined in the page before its own script, which finds it as the global `ddaeApi`. The page reads
 * every JSON answer through this ApiClient, so each body is parsed with its schema from
 * libs/contracts exactly as the CLI, the e2e tests and the chaos tool parse it; an answer that does
 * not match throws ApiContractError, which the page shows.
 */
import { z } from 'zod';
import { ApiClient, ApiContractError, ApiRequestError } from '@ddae/api-client';

/** The page's origin (the API serves the page): a relative base in the browser. */
declare const location: { readonly origin: string };

// The page's CSP has no 'unsafe-eval': zod's fast path compiles parsers with `new Function`, and
// even its probe for whether it may is reported as a CSP violation. The interpreter is plenty here.
z.config({ jitless: true });

export const api = new ApiClient(location.origin);
export { ApiContractError, ApiRequestError };
