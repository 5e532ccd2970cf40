import type { INestApplication } from '@nestjs/common';
import { apiEnvSchema } from '@ddae/config';
import type { SweepSpecInput } from '@ddae/contracts';
import { appendEvent, createPrismaClient, EventRepository } from '@ddae/db';
import { createTestDatabase, deleteQueueKeys, uniqueQueuePrefix, waitFor, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface SseEvent {
  id: string;
  event: string;
  data: string;
}

/**
 * An SSE client over fetch: collects events as they arrive; `done` resolves when the server ends
 * the stream (or the client aborts it).
 */
function connect(url: string, lastEventId?: string) {
  const received: SseEvent[] = [];
  const controller = new AbortController();
  const done = (async () => {
    const res = await fetch(url, { headers: lastEventId ? { 'last-event-id': lastEventId } : {}, signal: controller.signal });
    expect(res.status).toBe(200);
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!block.includes('data:')) continue;
          const field = (name: string) => block.split('\n').find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2) ?? '';
          received.push({ id: field('id'), event: field('event'), data: field('data') });
        }
      }
    } catch (error) {
      if ((error as Error).name !== 'AbortError') throw error;
    }
  })();
  return { received, done, close: () => controller.abort() };
}

const spec = (): SweepSpecInput => ({
  name: 'sse-live',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 10, batchSize: 4, seeds: [0] },
  probe: { layers: ['out_1'], timesteps: [5], trainSize: 100, testSize: 50, epochs: 1 },
  baselines: [],
});

/** Server-Sent Events of a live sweep: events written while a client listens, by concurrent writers. */
describe('sweep events over SSE, live (real Postgres, the API over HTTP)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let base: string;
  let prefix: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = uniqueQueuePrefix('sse');
    const env = apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error', API_AUTH: 'off' });
    app = await createApiApp(env);
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
  });

  afterAll(async () => {
    await app?.close();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db?.drop();
  });

  const submit = async (): Promise<string> => {
    const res = await fetch(`${base}/api/sweeps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...spec(), name: `sse-${Math.random().toString(36).slice(2, 8)}` }) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };
  /** The sweep ends: its last event, then the stream's end. */
  const finish = async (sweepId: string) => {
    await db.prisma.$transaction(async (tx) => {
      await tx.sweep.update({ where: { id: sweepId }, data: { status: 'SUCCEEDED', finishedAt: new Date() } });
      await appendEvent(tx, sweepId, 'sweep.status', { status: 'SUCCEEDED' });
    });
  };
  const stored = async (sweepId: string) => (await db.prisma.sweepEvent.findMany({ where: { sweepId }, orderBy: { id: 'asc' } })).map((e) => String(e.id));

  it('a client connected before the first job sees every event in order, once, until the stream ends; a reconnect with Last-Event-ID resumes without gaps or repeats', async () => {
    const sweepId = await submit();
    // Four writers with connections of their own, as four worker processes would be.
    const clients = Array.from({ length: 4 }, () => createPrismaClient(db.url, { max: 2 }));
    const writers = clients.map((c) => new EventRepository(c));
    const first = connect(`${base}/api/sweeps/${sweepId}/events`);
    const second = connect(`${base}/api/sweeps/${sweepId}/events`);
    await waitFor('the submission event to arrive', async () => (first.received.length > 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
    // Writers in parallel, in several waves, as workers write them.
    for (let wave = 0; wave < 4; wave++) {
      await Promise.all(writers.map(async (w, k) => {
        for (let i = 0; i < 3; i++) await w.append(sweepId, 'run.checkpoint', { step: wave * 12 + k * 3 + i });
      }));
      if (wave === 1) {
        // The second client drops mid-stream and reconnects after the last event it saw.
        await waitFor('the second client to see the first waves', async () => (second.received.length >= 13 ? true : undefined), { timeoutMs: 20_000, intervalMs: 50 });
        second.close();
        await second.done;
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const resumed = connect(`${base}/api/sweeps/${sweepId}/events`, second.received.at(-1)?.id);
    await writers[0].append(sweepId, 'run.succeeded', { step: 48 });
    await Promise.all(clients.map((c) => c.$disconnect()));
    await finish(sweepId);
    await first.done;
    await resumed.done;

    const ids = await stored(sweepId);
    const sent = first.received.map((e) => e.event);
    expect(sent.filter((t) => t === 'run.checkpoint')).toHaveLength(48);
    expect(sent[0]).toBe('sweep.submitted');
    expect(first.received.map((e) => e.id)).toEqual(ids);
    expect(first.received.at(-1)).toMatchObject({ event: 'sweep.status' });
    expect(JSON.parse(first.received.at(-1)?.data ?? '{}')).toMatchObject({ status: 'SUCCEEDED' });
    // Before the drop plus after the reconnect: every event exactly once, in order.
    expect([...second.received, ...resumed.received].map((e) => e.id)).toEqual(ids);
  });

  it('an event whose transaction commits after a later one still reaches a live client', async () => {
    const sweepId = await submit();
    const client = connect(`${base}/api/sweeps/${sweepId}/events`);
    await waitFor('the stream to start', async () => (client.received.length > 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
    // A slow writer: its event takes its id first, its transaction commits last.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let slowWrote: () => void = () => undefined;
    const slowHasWritten = new Promise<void>((resolve) => (slowWrote = resolve));
    const slow = db.prisma.$transaction(async (tx) => {
      await appendEvent(tx, sweepId, 'run.checkpoint', { step: 1 });
      slowWrote();
      await held;
    }, { timeout: 30_000 });
    await slowHasWritten;
    // A fast writer meanwhile; the stream polls (every second) while the slow one is open.
    const fast = new EventRepository(db.prisma).append(sweepId, 'run.checkpoint', { step: 2 });
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    release();
    await slow;
    await fast;
    await finish(sweepId);
    await client.done;
    expect(client.received.map((e) => e.id)).toEqual(await stored(sweepId));
  });

  it('pages past 500 events: a finished sweep with 1,234 events streams them all in order, and resumes from the middle', async () => {
    const sweepId = await submit();
    await db.prisma.sweepEvent.createMany({ data: Array.from({ length: 1234 }, (_, i) => ({ sweepId, type: 'run.checkpoint', data: { step: i } })) });
    await finish(sweepId);
    const ids = await stored(sweepId);
    expect(ids.length).toBeGreaterThan(1234);
    const all = connect(`${base}/api/sweeps/${sweepId}/events`);
    await all.done;
    expect(all.received.map((e) => e.id)).toEqual(ids);
    const steps = all.received.filter((e) => e.event === 'run.checkpoint').map((e) => (JSON.parse(e.data) as { step: number }).step);
    expect(steps).toEqual(Array.from({ length: 1234 }, (_, i) => i));
    const from = ids[600];
    const rest = connect(`${base}/api/sweeps/${sweepId}/events`, from);
    await rest.done;
    expect(rest.received.map((e) => e.id)).toEqual(ids.slice(601));
  });
});
