/**
 * Retries a bookkeeping write through a short outage (a Postgres restart, a dropped connection)
 * with exponential backoff, so that a blip does not fail hours of training. Gives up after
 * `totalMs` and rethrows the last error: the job then fails and BullMQ retries it.
 */
export async function retryWrite<T>(what: string, write: () => Promise<T>, options: { totalMs?: number; onRetry?: (error: Error, delayMs: number) => void } = {}): Promise<T> {
  const deadline = Date.now() + (options.totalMs ?? 60_000);
  let delay = 250;
  for (;;) {
    try {
      return await write();
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      if (Date.now() + delay > deadline) throw new Error(`${what} failed: ${e.message}`);
      options.onRetry?.(e, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 5_000);
    }
  }
}
