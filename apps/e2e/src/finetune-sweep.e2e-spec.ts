import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isLeaderboardCellRow, isLeaderboardConfigRow } from '@ddae/contracts';
import { startStack, type Stack } from './stack';

/** The PyTorch twin's tiny UNet (libs/diffusion/fixtures): an imported model, so no pretraining to wait for. */
const FIXTURE = path.resolve(__dirname, '../../../libs/diffusion/fixtures/twin-unet-tiny.safetensors');
const SHA256 = createHash('sha256').update(readFileSync(FIXTURE)).digest('hex');

describe('probe to choose, fine-tune to deploy, end to end', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ workers: 1, workerEnvs: [{ DDAE_BACKEND: 'native' }] });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('linear probes on the grid, then fine-tunes the best cell: both numbers for that cell, rankings apart', async () => {
    const { id } = await stack.submit({
      name: 'e2e-finetune',
      dataset: 'fashion-mnist',
      models: [{ name: 'twin-tiny', method: 'ddpm', unet: 'tiny', checkpoint: { path: FIXTURE, sha256: SHA256 } }],
      pretrain: { steps: 1 },
      probe: {
        layers: ['out_3', 'out_4'],
        timesteps: [10, 100],
        epochs: 3,
        batchSize: 64,
        learningRate: 0.01,
        trainSize: 200,
        testSize: 100,
        finetune: { cells: 'best', epochs: 2, batchSize: 32, learningRate: 1e-3, labels: 100 },
      },
      baselines: [],
    });
    const sweep = await stack.waitForSweep(id, 600_000);
    expect(sweep.status).toBe('SUCCEEDED');

    const tasks = await stack.db.prisma.probeTask.findMany({ where: { sweepId: id }, orderBy: { createdAt: 'asc' } });
    const tuned = tasks.filter((t) => t.protocolKey.includes('probe=finetune'));
    expect(tuned).toHaveLength(1);
    expect(tuned[0]).toMatchObject({ status: 'SUCCEEDED', labels: [100] });

    // The best linear cell (all labels) carries its fine-tuned accuracy (100 labels), on the verdict and in the config ranking.
    const verdict = await stack.client.verdict(id);
    expect(verdict.best).toMatchObject({ probeProtocol: 'fast', layer: tuned[0].layers[0], noiseLevel: tuned[0].noiseLevel });
    expect(verdict.best?.finetuned).toMatchObject({ n: 1, labels: 100 });
    const finetuned = verdict.best?.finetuned?.mean ?? -1;
    // Trained end to end on 100 labels for 2 epochs: above chance (0.1) on 100 test images.
    expect(finetuned).toBeGreaterThan(0.2);
    const configs = (await stack.client.leaderboard({ sweep: id, per: 'config' })).rows.filter(isLeaderboardConfigRow);
    expect(configs).toHaveLength(4);
    expect(configs.filter((r) => r.finetuned !== null).map((r) => [r.layer, r.noiseLevel, r.finetuned?.mean])).toEqual([[tuned[0].layers[0], tuned[0].noiseLevel, finetuned]]);

    // Never ranked together: the linear ranking holds the 4 linear cells only; ?protocol=finetune the one fine-tuned cell.
    const linear = (await stack.client.leaderboard({ sweep: id })).rows.filter(isLeaderboardCellRow);
    expect(linear.map((r) => r.probeProtocol)).toEqual(['fast', 'fast', 'fast', 'fast']);
    const tunedRows = (await stack.client.leaderboard({ sweep: id, protocol: 'finetune', labels: '100' })).rows.filter(isLeaderboardCellRow);
    expect(tunedRows.map((r) => [r.probeProtocol, r.accuracy, r.labels])).toEqual([['finetune', finetuned, 100]]);
  });
});
