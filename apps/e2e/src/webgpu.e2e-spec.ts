import { isLeaderboardCellRow } from '@ddae/contracts';
import { waitFor } from '@ddae/testing';
import { startStack, type Stack } from './stack';

/**
 * A GPU worker beside a CPU worker: one worker on the webgpu backend (Dawn on Mesa's lavapipe, the
 * software Vulkan every CI machine has; DDAE_BACKEND=webgpu asks for it, as `auto` never takes a
 * software adapter) and one on our native kernels share a tiny sweep. Every result records the
 * backend and the device that made it (the export and the leaderboard say so), and the webgpu
 * worker's heartbeat names its adapter.
 */
const SWEEP = {
  name: 'e2e-webgpu',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  // Two runs, so that each worker takes one: lavapipe is slow, so 2 steps of batch 8.
  // Probing during pretraining at the final checkpoint (one cell, tiny), so that its rows name a device too.
  pretrain: { steps: 2, batchSize: 8, checkpointEvery: 2, trainSize: 64, seeds: [0, 1], progressProbe: { every: 2, layers: ['out_2'], trainSize: 32, testSize: 32, epochs: 1 } },
  probe: { layers: ['out_2', 'out_4'], timesteps: [10], epochs: 2, batchSize: 32, learningRate: 0.01, trainSize: 32, testSize: 32 },
  baselines: [],
};

describe('a webgpu worker beside a CPU worker finishes a tiny sweep', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ workers: 2, workerEnvs: [{ DDAE_BACKEND: 'webgpu' }, { DDAE_BACKEND: 'native' }] });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('records which backend and device made every result', async () => {
    // Both registered (so both wait on the queue) before the work arrives.
    const workers = await waitFor('both workers to register', async () => {
      const body = await stack.client.workers();
      return body.workers.length === 2 ? body.workers : undefined;
    }, { timeoutMs: 120_000, describe: async () => stack.logs() });
    const byId = new Map(workers.map((w) => [w.id, w]));
    const gpuWorker = workers.find((w) => w.backend === 'webgpu');
    expect(workers.map((w) => w.backend).sort()).toEqual(['native', 'webgpu']);
    // The heartbeat names the adapter: which GPU, that it is a software one, and its limits.
    expect(gpuWorker?.device).toMatch(/^GPU 0 "llvmpipe[^"]*" \(software adapter, .*vulkan.*max binding \d+ MiB/);
    expect(workers.find((w) => w.backend === 'native')?.device).toBe('cpu');

    const submitted = await stack.submit(SWEEP);
    expect(submitted).toMatchObject({ created: true, queued: true });
    const sweep = await stack.waitForSweep(submitted.id, 480_000);
    expect(sweep.status).toBe('SUCCEEDED');

    const runs = await stack.db.prisma.run.findMany({ where: { sweepId: submitted.id } });
    const results = await stack.db.prisma.probeResult.findMany({ where: { sweepId: submitted.id } });
    expect(runs).toHaveLength(2);
    expect(results).toHaveLength(4);
    const made = [...runs.map((r) => ({ backend: r.backend, workerId: r.workerId })), ...results.map((r) => ({ backend: r.backend, workerId: r.workerId }))];
    for (const m of made) expect(m.backend).toBe(byId.get(m.workerId ?? '')?.backend);
    // The GPU worker did its share (each worker took one of the two runs from the queue).
    expect(new Set(runs.map((r) => r.backend))).toEqual(new Set(['native', 'webgpu']));
    for (const r of results) expect(r.accuracy).toBeGreaterThan(0);
    // The device with every result: the lavapipe adapter (named, marked software) for the GPU
    // worker's, `cpu` for the native worker's; in the rows, the export and the leaderboard.
    const gpuLabel = /^GPU 0 "llvmpipe[^"]*" \(software adapter, [^)]*vulkan/;
    const deviceOf = (workerId: string | null) => (byId.get(workerId ?? '')?.backend === 'webgpu' ? gpuLabel : /^cpu$/);
    for (const r of [...runs, ...results]) expect(r.device).toMatch(deviceOf(r.workerId));
    // What the pretraining job measured and sampled names its run's device: probing during
    // pretraining and the sample grid, in the rows and as the API serves them.
    const deviceOfRun = new Map(runs.map((r) => [r.id, r.device]));
    const progressRows = await stack.db.prisma.progressProbe.findMany({ where: { sweepId: submitted.id } });
    const sampleRows = await stack.db.prisma.runSample.findMany({ where: { sweepId: submitted.id }, omit: { png: true } });
    expect([progressRows.length, sampleRows.length]).toEqual([2, 2]);
    for (const r of [...progressRows, ...sampleRows]) expect(r.device).toBe(deviceOfRun.get(r.runId));
    const progress = await stack.client.progress(submitted.id);
    expect(progress.runs.map((r) => r.points.map((p) => p.device))).toEqual(progress.runs.map((r) => [deviceOfRun.get(r.runId)]));
    const samples = await stack.client.samples(submitted.id);
    expect(samples.samples.map((s) => s.device)).toEqual(samples.samples.map((s) => deviceOfRun.get(s.runId)));
    // The GPU worker made one of the runs (above); which worker probes is the queue's choice.
    expect(runs.filter((r) => gpuLabel.test(r.device ?? ''))).toHaveLength(1);
    const exported = (await (await fetch(`${stack.base}/api/sweeps/${submitted.id}/results.jsonl`)).text()).trim().split('\n').map((l) => JSON.parse(l) as { worker: string; device: string });
    expect(exported).toHaveLength(4);
    for (const row of exported) expect(row.device).toMatch(deviceOf(row.worker));
    const board = await stack.client.leaderboard({ sweep: submitted.id, limit: '10' });
    expect(board.rows.filter(isLeaderboardCellRow).map((r) => r.device).sort()).toEqual(results.filter((r) => !r.untrained).map((r) => r.device).sort());
    // The GPU worker's heartbeat carries what tfjs's buffer pool held at the end of its last job; the CPU worker's none.
    const beats = await waitFor('the GPU worker to report its GPU memory', async () => {
      const now = (await stack.client.workers()).workers;
      return now.find((w) => w.backend === 'webgpu')?.gpuMemory ? now : undefined;
    }, { timeoutMs: 30_000, describe: async () => stack.logs() });
    const gpuMemory = beats.find((w) => w.backend === 'webgpu')?.gpuMemory;
    expect(gpuMemory?.allocatedBytes).toBeGreaterThan(0);
    expect(gpuMemory?.allocatedBytes).toBeGreaterThanOrEqual(gpuMemory?.usedBytes ?? Infinity);
    expect(beats.find((w) => w.backend === 'native')?.gpuMemory).toBeNull();
    expect(stack.workers[0].output()).toMatch(/backend webgpu \(@tensorflow\/tfjs-backend-webgpu on Dawn/);
  });
});
