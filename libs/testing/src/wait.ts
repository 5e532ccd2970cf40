/**
 * Polls `probe` until it returns a value other than undefined; rejects after `timeoutMs` with an
 * error naming what was awaited and the last state seen (no bare sleeps in tests).
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number; describe?: () => Promise<string> },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const state = options.describe ? await options.describe().catch((e: Error) => `(describe failed: ${e.message})`) : '';
      const cause = lastError instanceof Error ? ` last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}.${cause}${state ? `\nstate: ${state}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
  }
}
