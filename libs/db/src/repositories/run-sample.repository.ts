import type { PrismaClient, RunSample } from '../generated/client';

/** A sample grid as the worker records it. */
export interface RunSampleRecord {
  /** Step of the checkpoint sampled. */
  step: number;
  /** The PNG beside the checkpoint, relative to the artifact root. */
  path: string;
  png: Uint8Array;
  n: number;
  sampler: string;
  samplerSteps: number;
  seed: number;
  width: number;
  height: number;
  seconds: number;
  backend: string;
  /** The device that computed it (the run's: the GPU adapter on webgpu, else the worker's device label). */
  device?: string;
  workerId: string;
}

/** What a page needs to show a grid (the PNG itself is served apart). */
export interface RunSampleInfo {
  runId: string;
  /** The run's key, e.g. `ddpm-small-s0`. */
  run: string;
  model: string;
  method: string;
  step: number;
  n: number;
  sampler: string;
  samplerSteps: number;
  /** Seed of the sampler's noise (not the run's seed). */
  samplerSeed: number;
  width: number;
  height: number;
  seconds: number;
  backend: string;
  /** The device that computed it: the GPU adapter on webgpu, else the worker's device label (as the run's); null on rows from before it was recorded. */
  device: string | null;
  path: string;
  createdAt: Date;
}

export class RunSampleRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Stores a run's sample grid, upserted on (run, checkpoint step): a retried job converges. False when the run is gone. */
  async record(runId: string, s: RunSampleRecord): Promise<boolean> {
    const run = await this.prisma.run.findUnique({ where: { id: runId }, select: { sweepId: true } });
    if (!run) return false;
    const values = { ...s, png: Uint8Array.from(s.png), device: s.device ?? null };
    await this.prisma.runSample.upsert({
      where: { runId_step: { runId, step: s.step } },
      create: { runId, sweepId: run.sweepId, ...values },
      update: values,
    });
    return true;
  }

  /** Every sample grid of a sweep (without the PNG bytes), runs by key. */
  async ofSweep(sweepId: string): Promise<RunSampleInfo[]> {
    const rows = await this.prisma.runSample.findMany({
      where: { sweepId },
      omit: { png: true },
      include: { run: { select: { key: true, modelName: true, method: true } } },
      orderBy: [{ runId: 'asc' }, { step: 'desc' }],
    });
    return rows
      .map((r) => ({
        runId: r.runId, run: r.run.key, model: r.run.modelName, method: r.run.method, step: r.step, n: r.n, sampler: r.sampler, samplerSteps: r.samplerSteps,
        samplerSeed: r.seed, width: r.width, height: r.height, seconds: r.seconds, backend: r.backend, device: r.device, path: r.path, createdAt: r.createdAt,
      }))
      .sort((a, b) => (a.run < b.run ? -1 : a.run > b.run ? 1 : b.step - a.step));
  }

  /** The newest grid of a run (its final checkpoint's), with the PNG; null when there is none. */
  latest(runId: string): Promise<Pick<RunSample, 'png' | 'step' | 'runId' | 'sweepId' | 'updatedAt'> | null> {
    return this.prisma.runSample.findFirst({ where: { runId }, orderBy: { step: 'desc' }, select: { png: true, step: true, runId: true, sweepId: true, updatedAt: true } });
  }
}
