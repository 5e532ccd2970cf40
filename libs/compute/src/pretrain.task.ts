import { DATASET_SHAPES, paddedImageSize, type ComputeHooks, type PretrainResult, type PretrainTask } from '@ddae/contracts';
import { loadDataset, seededOrder, toModelInput } from '@ddae/datasets';
import { pretrain } from '@ddae/diffusion';

/**
 * Runs a pretraining task on the backend the process selected: the first `task.trainSize` images
 * of `seededOrder(train.count, task.seed)`, padded to the model size, then `pretrain` (which
 * resumes from `task.checkpointDir`). Throws StoppedError / NonFiniteLossError from `pretrain`.
 */
export async function runPretrainTask(task: PretrainTask, hooks: ComputeHooks = {}): Promise<PretrainResult> {
  const train = await loadDataset(task.dataset.name, 'train', task.dataset.dir !== undefined ? { dir: task.dataset.dir } : {});
  const n = Math.min(task.trainSize ?? train.count, train.count);
  const indices = seededOrder(train.count, task.seed).subarray(0, n);
  const size = paddedImageSize(DATASET_SHAPES[task.dataset.name].size);
  const images = toModelInput(train, indices, size);
  const out = await pretrain(task, images, n, hooks, { imageSize: size, imageChannels: train.channels });
  return { kind: 'pretrain', finalCheckpoint: out.finalCheckpoint, steps: out.steps, seconds: out.seconds, parameters: out.parameters };
}
