import * as path from 'node:path';
import type { z } from 'zod';
import { pretrainTaskSchema, type PretrainTask } from '@ddae/contracts';

/**
 * A tiny pretraining task on the Fashion-MNIST files a spec wrote to `root/data`, parsed by the
 * task schema as a worker would: a two-level UNet without attention, 2 steps of batch 4 on 16
 * training images, a checkpoint at the end, into `root/run`. `over` changes any field (its own
 * run id and checkpoint directory, more steps, samples, FID...). Test support only.
 */
export function tinyPretrainTask(root: string, over: Partial<z.input<typeof pretrainTaskSchema>> = {}): PretrainTask {
  return pretrainTaskSchema.parse({
    kind: 'pretrain',
    runId: 'run',
    method: 'ddpm',
    unet: { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4 },
    dataset: { name: 'fashion-mnist', dir: path.join(root, 'data') },
    trainSize: 16,
    steps: 2,
    batchSize: 4,
    learningRate: 2e-4,
    warmupSteps: 1,
    gradClip: 1,
    emaDecayCap: 0.9999,
    checkpointEvery: 2,
    seed: 0,
    checkpointDir: path.join(root, 'run'),
    ...over,
  });
}
