import type { PrismaClient } from '../generated/client';

/** FID and KID of a run's checkpoint as the worker records them. */
export interface RunGenerationQualityRecord {
  step: number;
  extractor: string;
  extractorSha256: string;
  fid: number;
  kidMean: number;
  kidStd: number;
  kidSubsets: number;
  kidSubsetSize: number;
  samples: number;
  reference: string;
  referenceCount: number;
  sampler: string;
  samplerSteps: number;
  seed: number;
  seconds: number;
  backend: string;
  /** The device that computed it: the GPU adapter on webgpu, else the worker's device label (as the run's); null on rows from before it was recorded. */
  device?: string | null;
  workerId: string;
}

/** One stored evaluation with its run's identity. */
export interface RunGenerationQualityInfo extends RunGenerationQualityRecord {
  device: string | null;
  runId: string;
  /** The run's key, e.g. `ddpm-small-s0`. */
  run: string;
  model: string;
  method: string;
  untrained: boolean;
  createdAt: Date;
}

export class RunGenerationQualityRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Stores an evaluation, upserted on (run, checkpoint step): a retried job converges. False when the run is gone. */
  async record(runId: string, g: RunGenerationQualityRecord): Promise<boolean> {
    const run = await this.prisma.run.findUnique({ where: { id: runId }, select: { sweepId: true } });
    if (!run) return false;
    const values = { ...g, device: g.device ?? null };
    await this.prisma.runGenerationQuality.upsert({
      where: { runId_step: { runId, step: g.step } },
      create: { runId, sweepId: run.sweepId, ...values },
      update: values,
    });
    return true;
  }

  /** Every evaluation of a sweep, runs by key, newest checkpoint first. */
  async ofSweep(sweepId: string): Promise<RunGenerationQualityInfo[]> {
    const rows = await this.prisma.runGenerationQuality.findMany({
      where: { sweepId },
      include: { run: { select: { key: true, modelName: true, method: true, untrained: true } } },
    });
    return rows
      .map(({ run, sweepId: _sweepId, updatedAt: _updatedAt, ...r }) => ({ ...r, run: run.key, model: run.modelName, method: run.method, untrained: run.untrained }))
      .sort((a, b) => (a.run < b.run ? -1 : a.run > b.run ? 1 : b.step - a.step));
  }

  /** The newest evaluation of each of these runs (its final checkpoint's), by run id. */
  async latestOfRuns(runIds: string[]): Promise<Map<string, RunGenerationQualityRecord>> {
    if (runIds.length === 0) return new Map();
    const rows = await this.prisma.runGenerationQuality.findMany({ where: { runId: { in: runIds } }, orderBy: [{ runId: 'asc' }, { step: 'desc' }] });
    const out = new Map<string, RunGenerationQualityRecord>();
    for (const { runId, sweepId: _s, createdAt: _c, updatedAt: _u, ...r } of rows) if (!out.has(runId)) out.set(runId, r);
    return out;
  }
}
