import { deleteQueueKeys, uniqueQueuePrefix } from './queue';

/** A part a suite closes after it: a BullMQ queue, a worker, a queue events listener. */
export interface ClosablePart {
  close(): Promise<void>;
}

/** What a spec reaches through `useQueueParts`. */
export interface QueueParts<P> {
  readonly redisUrl: string;
  /** The suite's own queue prefix (its keys are deleted after the suite). */
  readonly prefix: string;
  /** What `make` built on the prefix, there from the suite's beforeAll on. */
  readonly parts: P;
}

/**
 * Registers the jest hooks of a suite that drives queue parts of its own on the real Redis: a
 * prefix no other run shares, the parts `make` builds on it before the suite, and after it the
 * parts closed (last built first) and the prefix's keys deleted. The suite builds the parts
 * (libs/testing cannot import @ddae/queue, whose specs import this library).
 */
export function useQueueParts<P extends Record<string, ClosablePart>>(label: string, make: (redisUrl: string, prefix: string) => P): QueueParts<P> {
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = uniqueQueuePrefix(label);
  let parts: P | undefined;
  beforeAll(() => {
    parts = make(redisUrl, prefix);
  });
  afterAll(async () => {
    for (const part of Object.values(parts ?? {}).reverse()) await part.close();
    await deleteQueueKeys(redisUrl, prefix);
  });
  return {
    redisUrl,
    prefix,
    get parts() {
      if (!parts) throw new Error(`useQueueParts(${label}): the parts are only there inside the suite's tests`);
      return parts;
    },
  };
}
