/** A small client of the REST API; errors carry the API's message and field paths. */
export class ApiClient {
  /** @param token an API token (sent as a Bearer token), from --token or DDAE_API_TOKEN */
  constructor(
    private readonly base: string,
    private readonly token?: string,
  ) {}

  async request<T>(method: string, path: string, options: { body?: string; contentType?: string; headers?: Record<string, string> } = {}): Promise<T> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.base), {
        method,
        body: options.body,
        headers: {
          ...(options.contentType ? { 'content-type': options.contentType } : {}),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...options.headers,
        },
      });
    } catch (error) {
      throw new CliError(`cannot reach the API at ${this.base} (${(error as Error).cause ?? (error as Error).message}). Start it with \`npm run api\`, or pass --api <url> / set DDAE_API_URL.`, 0);
    }
    const text = await response.text();
    const body = text ? (JSON.parse(text) as unknown) : undefined;
    if (!response.ok) {
      const err = body as { message?: string; issues?: { path: string; message: string }[] } | undefined;
      const issues = err?.issues?.map((i) => `  ${i.path || '(document)'}: ${i.message}`).join('\n');
      if (response.status === 401 && !this.token) throw new CliError(`${err?.message ?? 'unauthorized'}\nthen pass it with --token <token> or DDAE_API_TOKEN`);
      throw new CliError(`${response.status} ${err?.message ?? response.statusText}${issues ? `\n${issues}` : ''}`, response.status);
    }
    return body as T;
  }
}

/** An error for people: printed without a stack trace, exit code 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
  /** @param status the API's HTTP status; 0 when no answer came back; undefined for the CLI's own errors */
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}
