import { startStack, type Stack } from './stack';

/**
 * Generation quality through the real worker path (compute child -> IPC -> worker -> Postgres ->
 * REST): a tiny DDPM and its untrained control, each evaluated after pretraining with 64 samples of
 * 4 DDIM steps against the Fashion-MNIST test split in the committed classifier's feature space.
 */
const SWEEP = {
  name: 'e2e-generation-quality',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 20, batchSize: 8, learningRate: 0.001, checkpointEvery: 20, trainSize: 256, seeds: [0], fid: { samples: 64, steps: 4 } },
  probe: { layers: ['out_2'], timesteps: [10], epochs: 2, batchSize: 64, learningRate: 0.01, trainSize: 200, testSize: 100 },
  baselines: ['untrained'],
};

describe('FID and KID after pretraining, end to end', () => {
  let stack: Stack | undefined;

  afterAll(async () => {
    await stack?.stop();
  });

  it('stores FID and KID per run (the untrained control too) and serves them beside, not inside, the accuracy', async () => {
    const s = (stack = await startStack({ workers: 1 }));
    const submitted = await s.submit(SWEEP);
    const { id } = submitted;
    expect((await s.waitForSweep(id, 400_000)).status).toBe('SUCCEEDED');

    const served = await s.client.generation(id);
    expect(served.runs.map((r) => [r.run, r.untrained, r.samples, r.samplerSteps, r.sampler, r.step]).sort()).toEqual([
      ['ddpm-tiny-s0', false, 64, 4, 'ddim', 20],
      ['ddpm-tiny-untrained-s0', true, 64, 4, 'ddim', 0],
    ]);
    for (const r of served.runs) {
      expect(r.extractor).toBe('ddae-fmnist-cnn-v1 penultimate, 128-d');
      expect(r.extractorSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(r).toMatchObject({ reference: 'fashion-mnist test', referenceCount: 10_000, kidSubsetSize: 64 });
      expect(Number.isFinite(r.fid) && r.fid > 0).toBe(true);
      expect(Number.isFinite(r.kidMean) && r.kidStd >= 0).toBe(true);
    }
    // Stored once per (run, checkpoint step).
    expect(await s.db.prisma.runGenerationQuality.count()).toBe(2);

    // The leaderboard's per-run rows carry the run's FID beside its accuracy.
    const board = await s.client.leaderboard({ sweep: id, per: 'run' });
    expect(board.rows.length).toBeGreaterThan(0);
    const trained = served.runs.find((r) => !r.untrained);
    for (const row of board.rows) {
      expect('accuracy' in row && 'generation' in row).toBe(true);
      if ('generation' in row) expect(row.generation).toEqual({ fid: trained?.fid, kidMean: trained?.kidMean, kidStd: trained?.kidStd, samples: 64, step: 20, extractor: 'ddae-fmnist-cnn-v1 penultimate, 128-d' });
    }
  });
});
