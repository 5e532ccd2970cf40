import { freePort, waitFor } from '@ddae/testing';
import { startStack, type Stack } from './stack';

/** The smallest real sweep: one tiny run, one probe cell. */
const SWEEP = {
  name: 'e2e-metrics',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 12, batchSize: 8, checkpointEvery: 6, trainSize: 64, seeds: [0], samples: false },
  probe: { layers: ['out_4'], timesteps: [10], epochs: 1, batchSize: 64, learningRate: 0.01, trainSize: 128, testSize: 64 },
  baselines: [],
};

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus' text format, samples only (`name{a="b",...} value`). */
function parseMetrics(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not a sample line: ${line}`);
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
      return { name: m[1], labels, value: Number(m[3]) };
    });
}

/** The one sample of `name` whose labels include `labels`; fails naming what there is. */
function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`${found.length} samples ${name}${JSON.stringify(labels)}; there are: ${samples.filter((s) => s.name === name).map((s) => JSON.stringify(s.labels)).join(' ')}`);
  return found[0].value;
}

async function scrape(url: string): Promise<{ contentType: string; samples: Sample[] }> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return { contentType: res.headers.get('content-type') ?? '', samples: parseMetrics(await res.text()) };
}

/** GET /metrics of a real API and a real worker after a tiny sweep ran through them. */
describe('Prometheus metrics of the API and a worker, end to end', () => {
  let stack: Stack;
  let workerMetrics: string;

  beforeAll(async () => {
    const healthPort = await freePort();
    workerMetrics = `http://127.0.0.1:${healthPort}/metrics`;
    stack = await startStack({ workers: 1, workerEnv: { HEALTH_PORT: String(healthPort) }, env: { LOG_FORMAT: 'json' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("reports queue depth, reconciler passes, HTTP latency by route template, the worker its jobs, throughput and busy ratio; LOG_FORMAT=json lines carry the job's ids", async () => {
    const { id } = await stack.submit(SWEEP);
    expect((await stack.waitForSweep(id, 240_000)).status).toBe('SUCCEEDED');
    await stack.client.getSweep(id.slice(0, 8));

    const api = await scrape(`${stack.base}/metrics`);
    expect(api.contentType).toMatch(/^text\/plain;.*version=0\.0\.4/);
    for (const state of ['waiting', 'prioritized', 'active', 'delayed', 'failed']) expect(sample(api.samples, 'ddae_queue_jobs', { queue: 'ddae-compute', state })).toBe(0);
    expect(sample(api.samples, 'ddae_queue_redis_up')).toBe(1);
    // RECONCILE_MS is 2 s in the stack: at least the pass at start ran.
    expect(sample(api.samples, 'ddae_reconciler_passes_total', { result: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(sample(api.samples, 'ddae_reconciler_actions_total', { action: 'requeued' })).toBe(0);
    expect(sample(api.samples, 'ddae_reconciler_actions_total', { action: 'reoffered' })).toBeGreaterThanOrEqual(0);
    // One series per route template: the sweep polled by full and by short id is one route.
    const polled = sample(api.samples, 'ddae_http_request_duration_seconds_count', { method: 'GET', route: '/api/sweeps/:id', status: '200' });
    expect(polled).toBeGreaterThanOrEqual(2);
    expect(sample(api.samples, 'ddae_http_request_duration_seconds_count', { method: 'POST', route: '/api/sweeps', status: '201' })).toBe(1);
    expect(sample(api.samples, 'ddae_http_request_duration_seconds_sum', { method: 'GET', route: '/api/sweeps/:id', status: '200' })).toBeGreaterThan(0);
    expect(api.samples.filter((s) => s.labels.route?.includes(id.slice(0, 8)))).toEqual([]);
    expect(sample(api.samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    const worker = await scrape(workerMetrics);
    expect(worker.contentType).toMatch(/^text\/plain;.*version=0\.0\.4/);
    const w = { worker: 'e2e-worker-1' };
    expect(sample(worker.samples, 'ddae_worker_jobs_total', { ...w, kind: 'pretrain', result: 'done' })).toBe(1);
    expect(sample(worker.samples, 'ddae_worker_jobs_total', { ...w, kind: 'probe', result: 'done' })).toBeGreaterThanOrEqual(1);
    const jobs = worker.samples.filter((s) => s.name === 'ddae_worker_jobs_total').reduce((sum, s) => sum + s.value, 0);
    expect(sample(worker.samples, 'ddae_worker_job_duration_seconds_count', { ...w, kind: 'pretrain', result: 'done' })).toBe(1);
    const trained = sample(worker.samples, 'ddae_worker_job_duration_seconds_sum', { ...w, kind: 'pretrain', result: 'done' });
    expect(trained).toBeGreaterThan(0);
    expect(trained).toBeLessThan(240);
    expect(worker.samples.filter((s) => s.name === 'ddae_worker_job_queue_wait_seconds_count').reduce((sum, s) => sum + s.value, 0)).toBe(jobs);
    // 12 steps of 8 images; the first progress report of an attempt is the baseline the rate starts from.
    const images = sample(worker.samples, 'ddae_worker_training_images_total', w);
    expect(images).toBeGreaterThan(0);
    expect(images).toBeLessThanOrEqual(12 * 8);
    expect(images % 8).toBe(0);
    expect(sample(worker.samples, 'ddae_worker_training_images_per_second', w)).toBe(0);
    expect(sample(worker.samples, 'ddae_worker_busy', w)).toBe(0);
    const ratio = sample(worker.samples, 'ddae_worker_busy_ratio', w);
    expect(ratio).toBeGreaterThan(0);
    expect(ratio).toBeLessThan(1);
    expect(sample(worker.samples, 'ddae_worker_busy_seconds_total', w)).toBeGreaterThan(0);

    // LOG_FORMAT=json: every line is a JSON object; the job's lines carry its ids.
    const lines = (p: { output(): string }) => p.output().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const run = await stack.db.prisma.run.findFirstOrThrow({ where: { sweepId: id } });
    const workerLines = lines(stack.workers[0]);
    expect(workerLines.every((l) => l['service'] === 'worker' && l['worker'] === 'e2e-worker-1' && typeof l['level'] === 'string')).toBe(true);
    expect(workerLines).toContainEqual(expect.objectContaining({ level: 'info', context: 'Jobs', jobKind: 'pretrain', jobId: expect.any(String), sweepId: id, runId: run.id, msg: expect.stringMatching(/ steps in /) }));
    // One line per change of the worker's state: started once, busy once per job taken.
    const changes = workerLines.filter((l) => l['context'] === 'Worker' && String(l['msg']).includes(' -> ')).map((l) => String(l['msg']));
    expect(changes.filter((m) => m === 'starting -> idle')).toHaveLength(1);
    expect(changes.filter((m) => /^idle -> busy \(job \S+\)$/.test(m))).toHaveLength(jobs);
    expect(changes.filter((m) => m === 'busy -> idle')).toHaveLength(jobs);
    expect(lines(stack.api)).toContainEqual(expect.objectContaining({ service: 'api', level: 'info', req: expect.objectContaining({ method: 'POST', url: '/api/sweeps' }), res: expect.objectContaining({ statusCode: 201 }) }));
    expect(JSON.stringify(lines(stack.api))).not.toContain(stack.token);

    // While a job runs the worker says so (busy 1, and a training rate once two progress reports came).
    const { id: second } = await stack.submit({ ...SWEEP, name: 'e2e-metrics-2', pretrain: { ...SWEEP.pretrain, steps: 400, checkpointEvery: 200 } });
    const running = await waitFor('the worker to report a training rate', async () => {
      const now = (await scrape(workerMetrics)).samples;
      return sample(now, 'ddae_worker_training_images_per_second', w) > 0 ? now : undefined;
    }, { timeoutMs: 120_000, intervalMs: 300, describe: async () => stack.logs() });
    expect(sample(running, 'ddae_worker_busy', w)).toBe(1);
    await stack.client.cancel(second);
    // The API's line of a write names the sweep it was about.
    await waitFor('the cancel line', async () => lines(stack.api).find((l) => l['sweepId'] === second && (l['req'] as { url?: string } | undefined)?.url === `/api/sweeps/${second}/cancel`), { timeoutMs: 5_000, describe: async () => stack.logs() });
  });
});
