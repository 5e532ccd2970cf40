import { ApiClient, type ApiRequestError } from '@ddae/api-client';

/** The API client of the CLI (libs/api-client): its failures become CliErrors, printed without a stack trace. */
export function cliApiClient(base: string, token: string | undefined): ApiClient {
  return new ApiClient(base, {
    token,
    toError: (failure: ApiRequestError) => {
      if (failure.status === 0) return new CliError(`${failure.message}. Start it with \`npm run api\`, or pass --api <url> / set DDAE_API_URL.`, 0);
      if (failure.status === 401 && !token) return new CliError(`${failure.body?.message ?? failure.message}\nthen pass it with --token <token> or DDAE_API_TOKEN`, 401);
      return new CliError(failure.message, failure.status);
    },
  });
}

export type { ApiClient };

/** An error for people: printed without a stack trace, exit code 1. */
export class CliError extends Error {
  override readonly name: string = 'CliError';
  /** @param status the API's HTTP status; 0 when no answer came back; undefined for the CLI's own errors */
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** The command line itself is wrong (no command, unknown command, missing argument): exit code 2. */
export class UsageError extends CliError {
  override readonly name = 'UsageError';
}
