import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { baselineTaskSchema, pretrainTaskSchema, probeTaskSchema, type BaselineTask, type ComputeResult } from '@ddae/contracts';
import { encodeIdx } from '@ddae/datasets';
import { ComputeProcess, type ComputeProcessOptions } from './compute-process';

jest.setTimeout(180_000);

/** A tiny synthetic Fashion-MNIST (64 train, 32 test images): class c is bright in row band c. */
function writeSyntheticFashion(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [n, prefix] of [[64, 'train'], [32, 't10k']] as const) {
    const images = new Uint8Array(n * 28 * 28);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 10;
      for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) images[i * 784 + y * 28 + x] = Math.floor(y / 3) === i % 10 ? 220 : (i * 7 + x * 13 + y * 5) % 40;
    }
    fs.writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte`), encodeIdx([n, 28, 28], images));
    fs.writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdx([n], labels));
  }
}

const PROTOCOL = { pooling: 'avg2', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 2, batchSize: 16, learningRate: 1e-3, standardize: true, trainSize: 40, testSize: 20, probeSeed: 0 } as const;

describe('the warm compute child (real child processes on wasm)', () => {
  let root: string;
  let data: string;
  const processes: ComputeProcess[] = [];
  const host = (options: Partial<ComputeProcessOptions> = {}) => {
    const p = new ComputeProcess({ backend: 'wasm', env: { DDAE_WASM_THREADS: '1', DDAE_NATIVE_THREADS: '1' }, ...options });
    processes.push(p);
    return p;
  };
  const baseline = (id: string, dir = data): BaselineTask => baselineTaskSchema.parse({ kind: 'baseline', baselineId: id, baseline: 'pixels', dataset: { name: 'fashion-mnist', dir }, protocol: PROTOCOL });
  const accuracy = (r: ComputeResult) => (r.kind === 'baseline' ? r.accuracy : NaN);

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-warm-child-'));
    data = path.join(root, 'data');
    writeSyntheticFashion(data);
  });
  afterEach(() => {
    for (const p of processes.splice(0)) p.kill();
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('runs consecutive jobs in one child, replaces it after maxJobs, and a fresh child answers the same', async () => {
    const compute = host({ maxJobs: 3 });
    const pids: (number | undefined)[] = [];
    const results: number[] = [];
    for (let i = 0; i < 4; i++) {
      results.push(accuracy(await compute.run(baseline(`b${i}`))));
      pids.push(compute.last?.pid);
      // The task's own time in the child: what the job computed (the rest of its wall time is overhead).
      expect(compute.last?.computeMs).toBeGreaterThan(0);
      if (i === 2) expect(compute.last?.retired).toMatch(/ran 3 job\(s\)/);
      else expect(compute.last?.retired).toBeUndefined();
    }
    expect(pids[1]).toBe(pids[0]);
    expect(pids[2]).toBe(pids[0]);
    expect(pids[3]).not.toBe(pids[0]);
    expect(new Set(results).size).toBe(1);
  });

  it('replaces a child whose resident memory ends a job over the limit', async () => {
    const compute = host({ maxJobs: 50, maxRssBytes: 2 ** 20 });
    await compute.run(baseline('m1'));
    const first = compute.last;
    expect(first?.retired).toMatch(/^resident memory \d+ MiB over 1 MiB$/);
    expect(first?.usage?.rssBytes).toBeGreaterThan(2 ** 20);
    await compute.run(baseline('m2'));
    expect(compute.last?.pid).not.toBe(first?.pid);
  });

  it('keeps a probed checkpoint loaded in the warm child, and replaces the child when its tensors pass the limit', async () => {
    const unet = { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4 };
    const pre = pretrainTaskSchema.parse({
      kind: 'pretrain', runId: 'r1', method: 'ddpm', unet, dataset: { name: 'fashion-mnist', dir: data }, trainSize: 16, steps: 2, batchSize: 4,
      learningRate: 2e-4, warmupSteps: 1, gradClip: 1, emaDecayCap: 0.9999, checkpointEvery: 2, seed: 0, checkpointDir: path.join(root, 'ckpt'),
    });
    // A generous limit first: the pretrain frees its tensors, the probe's model stays cached (DDAE_MODEL_CACHE default 2).
    const compute = host({ maxJobs: 50, maxTensorBytes: 2 ** 30 });
    const trained = await compute.run(pre);
    if (trained.kind !== 'pretrain') throw new Error('expected a pretrain result');
    const pid = compute.last?.pid;
    expect(compute.last?.usage?.numTensors).toBe(0);
    const probe = probeTaskSchema.parse({ kind: 'probe', probeTaskId: 'p1', method: 'ddpm', unet, dataset: pre.dataset, checkpointPath: trained.finalCheckpoint.path, noiseLevel: 11, layers: ['out_4'], protocol: PROTOCOL });
    const first = await compute.run(probe);
    const held = compute.last?.usage;
    expect(held?.numTensors).toBeGreaterThan(0);
    const second = await compute.run({ ...probe, noiseLevel: 11 });
    expect(compute.last).toMatchObject({ pid, jobs: 3 });
    // Same weights, loaded once: the tensors held did not grow, and the answers agree.
    expect(compute.last?.usage?.numTensors).toBe(held?.numTensors);
    expect(second.kind === 'probe' && second.layers).toEqual(first.kind === 'probe' && first.layers);

    const small = host({ maxJobs: 50, maxTensorBytes: 1 });
    await small.run(probe);
    expect(small.last?.retired).toMatch(/tensors of \d+ MiB over 0 MiB/);
    const replaced = small.last?.pid;
    await small.run(baseline('after'));
    expect(small.last?.pid).not.toBe(replaced);
  });

  it('kill -9 of a warm child fails only the job it is running; the next job gets a fresh child', async () => {
    const compute = host({ maxJobs: 50 });
    await compute.run(baseline('k1'));
    const warm = compute.last?.pid as number;
    // The warm child dies while running the second job: that attempt fails, nothing else.
    const second = compute.run(baseline('k2'), {
      onProgress: () => {
        if (compute.pid === warm) process.kill(warm, 'SIGKILL');
      },
    });
    await expect(second).rejects.toMatchObject({ name: 'ComputeProcessExit', message: expect.stringMatching(/signal SIGKILL/) });
    const third = await compute.run(baseline('k3'));
    expect(third.kind).toBe('baseline');
    expect(compute.last?.pid).not.toBe(warm);

    // Killed while idle between jobs, the next job sent before its death is noticed: no job was
    // running there, so none fails; the next one runs on a fresh child.
    const idle = compute.last?.pid as number;
    process.kill(idle, 'SIGKILL');
    expect((await compute.run(baseline('k4'))).kind).toBe('baseline');
    expect(compute.last?.pid).not.toBe(idle);
  });

  it('a task that fails ends its child: the next job starts on a fresh one', async () => {
    const compute = host({ maxJobs: 50 });
    await compute.run(baseline('f1'));
    const warm = compute.last?.pid;
    await expect(compute.run(baseline('f2', path.join(root, 'nowhere')))).rejects.toMatchObject({ name: 'DatasetMissingError' });
    expect(compute.last?.retired).toMatch(/the task failed \(DatasetMissingError\)/);
    await compute.run(baseline('f3'));
    expect(compute.last?.pid).not.toBe(warm);
  });
});
