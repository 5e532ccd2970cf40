import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PretrainTask } from '@ddae/contracts';
import { Rng } from './rng';

/*
 * Tiny pretraining runs for tests (this library's and libs/compute's, through the alias
 * @ddae/diffusion/training.fixture): the data, a task's defaults, a scratch directory per suite.
 * Test support only: index.ts does not export it.
 */

/** The tiny data set's image shape: 8x8, one channel. */
export const TINY_SHAPE = { imageSize: 8, imageChannels: 1 };
/** How many images the tiny data set holds. */
export const TINY_N = 12;
/** TINY_N images in (-1, 1): tanh of normal noise (seed 11). */
export const TINY_IMAGES = new Rng(11).normal(TINY_N * 64).map((v) => Math.tanh(v));

/** What every tiny task shares, less its network: DDPM, 4 steps of batch 4, a checkpoint every 2. */
export const TINY_PRETRAIN_BASE = {
  kind: 'pretrain',
  runId: 'r',
  method: 'ddpm',
  dataset: { name: 'fashion-mnist' },
  steps: 4,
  batchSize: 4,
  learningRate: 1e-3,
  warmupSteps: 2,
  gradClip: 1,
  emaDecayCap: 0.9999,
  checkpointEvery: 2,
  seed: 1,
} satisfies Omit<PretrainTask, 'checkpointDir'>;

/** The tiny UNet task: two levels (8 and 16 channels), attention at 4x4, dropout 0.1. */
export const TINY_UNET_TASK: Omit<PretrainTask, 'checkpointDir'> = {
  ...TINY_PRETRAIN_BASE,
  unet: { baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [4], dropout: 0.1, groups: 4 },
};

/**
 * Registers the hooks of a scratch directory for the current suite (made before it, removed after
 * it) and returns a maker of tasks: `defaults`, then a checkpoint directory of the task's own
 * there, then `over`. Call it in a describe block; make tasks inside its tests.
 */
export function usePretrainTasks(prefix: string, defaults: Omit<PretrainTask, 'checkpointDir'>): (over?: Partial<PretrainTask>) => PretrainTask {
  let root: string | undefined;
  let counter = 0;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  afterAll(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });
  return (over = {}) => {
    if (root === undefined) throw new Error(`usePretrainTasks(${prefix}): a task is made inside a test, after the suite's beforeAll`);
    return { ...defaults, checkpointDir: path.join(root, `run-${counter++}`), ...over };
  };
}
