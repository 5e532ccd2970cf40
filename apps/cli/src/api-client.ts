/** A small client of the REST API; errors carry the API's message and field paths. */
export class ApiClient {
  /** @param token an API token (sent as a Bearer token), from --token or DDAE_API_TOKEN */
  constructor(
    private readonly base: string,
    private readonly token?: string,
  ) {}

  async request<T>(method: string, path: string, options: { body?: string; contentType?: string; headers?: Record<string, string> } = {}): Promise<T> {
    const response = await this.send(method, path, options);
    const text = await response.text();
    const body = text ? (JSON.parse(text) as unknown) : undefined;
    if (!response.ok) throw this.failure(response, body);
    return body as T;
  }

  /** A GET whose body the caller streams (exports); a failure is read and thrown like `request`'s. */
  async stream(path: string): Promise<Response> {
    const response = await this.send('GET', path, {});
    if (response.ok) return response;
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = { message: text.slice(0, 200) };
    }
    throw this.failure(response, body);
  }

  private async send(method: string, path: string, options: { body?: string; contentType?: string; headers?: Record<string, string> }): Promise<Response> {
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
    return response;
  }

  private failure(response: Response, body: unknown): CliError {
    const err = body as { message?: string; issues?: { path: string; message: string }[]; candidates?: { id: string; name: string; status: string; createdAt: string }[] } | undefined;
    const issues = err?.issues?.map((i) => `  ${i.path || '(document)'}: ${i.message}`).join('\n');
    if (response.status === 401 && !this.token) return new CliError(`${err?.message ?? 'unauthorized'}\nthen pass it with --token <token> or DDAE_API_TOKEN`, response.status);
    // An ambiguous short id: one candidate per line, to pick from.
    const candidates = err?.candidates?.length
      ? `\n${err.candidates.map((c) => `  ${c.id}  ${c.name}  ${c.status}  ${c.createdAt}`).join('\n')}`
      : '';
    const message = err?.candidates?.length ? `the id matches ${err.candidates.length} sweeps; give more of it:` : (err?.message ?? response.statusText);
    return new CliError(`${response.status} ${message}${issues ? `\n${issues}` : ''}${candidates}`, response.status);
  }
}

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
