import * as fs from 'node:fs';
import { DATASET_SHAPES, backboneFields, backboneOf, paddedImageSize, type ComputeHooks, type PretrainResult, type PretrainTask, type ProgressPoint } from '@ddae/contracts';
import { loadDataset, seededOrder, toModelInput } from '@ddae/datasets';
import { importTorchCheckpoint, latestCheckpoint, modelConfigOf, pretrain, SafetensorsError, WeightMismatchError } from '@ddae/diffusion';
import { runProbeTask } from './probe.task';
import { plateaued, readProgressHistory, writeProgressHistory } from './progress-probe';

/**
 * Runs a pretraining task on the backend the process selected: the first `task.trainSize` images
 * of `seededOrder(train.count, task.seed)`, centred on `task.imageSize` (default: padded to a power of two), then `pretrain` (which
 * resumes from `task.checkpointDir`). Throws StoppedError / NonFiniteLossError from `pretrain`.
 *
 * With `task.progressProbe`, training runs in segments of `every` steps: each segment ends with a
 * checkpoint, which is probed (small fixed grid, fast protocol) and reported through
 * `hooks.progressProbe`; the next segment resumes from it, which is exact (the learning rate
 * depends only on the step, and resume is bit-identical). With `earlyStop`, training ends at the
 * first checkpoint where the probe has plateaued; that checkpoint is the run's final one. The
 * history is kept beside the checkpoints, so a killed and resumed run keeps its patience.
 */
export async function runPretrainTask(task: PretrainTask, hooks: ComputeHooks = {}): Promise<PretrainResult> {
  if (task.importFrom) return importPretrained(task, task.importFrom);
  const train = await loadDataset(task.dataset.name, 'train', task.dataset.dir !== undefined ? { dir: task.dataset.dir } : {});
  const n = Math.min(task.trainSize ?? train.count, train.count);
  const indices = seededOrder(train.count, task.seed).subarray(0, n);
  const size = task.imageSize ?? paddedImageSize(DATASET_SHAPES[task.dataset.name].size);
  const images = toModelInput(train, indices, size);
  const shape = { imageSize: size, imageChannels: train.channels, ...(task.lossEvery !== undefined ? { lossEvery: task.lossEvery } : {}) };
  const pp = task.progressProbe;
  if (!pp || task.steps === 0) {
    const out = await pretrain(task, images, n, hooks, shape);
    return { kind: 'pretrain', finalCheckpoint: out.finalCheckpoint, steps: out.steps, seconds: out.seconds, parameters: out.parameters };
  }

  const history = readProgressHistory(task.checkpointDir);
  // Points measured before a restart: the caller may have missed them (killed between the probe
  // and its report), so they are reported again; it stores them on their natural key.
  for (const point of history) hooks.progressProbe?.({ ...point, replayed: true });
  const scores = () => history.map((p) => p.accuracy);
  const summary = () => history.map((p) => ({ step: p.step, accuracy: p.accuracy }));
  const stopNow = () => pp.earlyStop !== undefined && plateaued(scores(), pp.earlyStop.patience, pp.earlyStop.minDelta);
  // Progress of a segment is reported against the whole run.
  const segmentHooks: ComputeHooks = { ...hooks, progress: (_f, detail) => hooks.progress?.((detail.step ?? 0) / task.steps, detail) };
  let seconds = 0;
  for (;;) {
    const current = latestCheckpoint(task.checkpointDir);
    // A run that already stopped at a plateau (then was restarted) ends where it stopped.
    if (current && stopNow() && history.at(-1)?.step === current.step) {
      const info = { step: current.step, path: current.path, sha256: current.manifestSha256, ...(current.manifest.loss !== undefined ? { loss: current.manifest.loss } : {}) };
      return { kind: 'pretrain', finalCheckpoint: info, steps: current.step, seconds, parameters: current.manifest.totalSize, progress: summary(), stoppedEarly: true };
    }
    // Stopped (killed, cancelled, shut down) after a segment's checkpoint but before its probe was
    // kept: probe it now rather than lose the point (training from it is exact either way).
    if (current && current.step > 0 && current.step < task.steps && current.step % pp.every === 0 && !history.some((p) => p.step === current.step)) {
      const info = { step: current.step, path: current.path, sha256: current.manifestSha256, ...(current.manifest.loss !== undefined ? { loss: current.manifest.loss } : {}) };
      if (await measure(info)) {
        return { kind: 'pretrain', finalCheckpoint: info, steps: current.step, seconds, parameters: current.manifest.totalSize, progress: summary(), stoppedEarly: true };
      }
      continue;
    }
    const from = current?.step ?? 0;
    const segmentEnd = Math.min(task.steps, (Math.floor(from / pp.every) + 1) * pp.every);
    const out = await pretrain({ ...task, steps: segmentEnd }, images, n, segmentHooks, shape);
    seconds += out.seconds;
    if (out.steps % pp.every === 0 && !history.some((p) => p.step === out.steps) && (await measure(out.finalCheckpoint)) && out.steps < task.steps) {
      return { kind: 'pretrain', finalCheckpoint: out.finalCheckpoint, steps: out.steps, seconds, parameters: out.parameters, progress: summary(), stoppedEarly: true };
    }
    if (out.steps >= task.steps) return { kind: 'pretrain', finalCheckpoint: out.finalCheckpoint, steps: out.steps, seconds, parameters: out.parameters, progress: summary(), stoppedEarly: false };
  }

  /** Probes a segment's checkpoint, keeps and reports the point; true when training should stop there. */
  async function measure(checkpoint: { path: string; step: number }): Promise<boolean> {
    const point = await probeCheckpoint(task, checkpoint.path, checkpoint.step, hooks);
    history.push(point);
    writeProgressHistory(task.checkpointDir, history);
    hooks.progressProbe?.(point);
    return stopNow();
  }
}

async function probeCheckpoint(task: PretrainTask, checkpointPath: string, step: number, hooks: ComputeHooks): Promise<ProgressPoint> {
  const pp = task.progressProbe as NonNullable<PretrainTask['progressProbe']>;
  const cells: ProgressPoint['cells'] = [];
  for (const noiseLevel of pp.noiseLevels) {
    const r = await runProbeTask(
      { kind: 'probe', probeTaskId: `${task.runId}-progress-${step}`, method: task.method, ...backboneFields(backboneOf(task)), dataset: task.dataset, checkpointPath, noiseLevel, layers: pp.layers, protocol: pp.protocol },
      { shouldStop: hooks.shouldStop },
    );
    for (const l of r.layers) cells.push({ layer: l.layer, noiseLevel, accuracy: l.accuracy, featureDim: l.featureDim });
  }
  return { step, accuracy: Math.max(...cells.map((c) => c.accuracy)), cells };
}

/** A file that cannot become this run's checkpoint (corrupt, another architecture, another sha256): retrying cannot help. */
export class ImportError extends Error {
  override readonly name = 'ImportError';
}

/**
 * A model pretrained elsewhere: its safetensors file (the PyTorch twin's names) becomes the run's
 * only checkpoint, step 0, holding the weights as both the raw and the EMA weights; nothing is
 * trained. The network is the task's, on the data set's images (padded or `imageSize`). A retried
 * attempt imports again over its own earlier checkpoint (the same bytes).
 */
function importPretrained(task: PretrainTask, from: NonNullable<PretrainTask['importFrom']>): PretrainResult {
  const started = Date.now();
  const shape = DATASET_SHAPES[task.dataset.name];
  const config = modelConfigOf(task, task.imageSize ?? paddedImageSize(shape.size), shape.channels);
  let imported: ReturnType<typeof importTorchCheckpoint>;
  // A source that is not there is the spec's fault, not this machine's: without this, its ENOENT
  // under ARTIFACT_DIR would read as an unusable artifact directory and take every worker offline in turn.
  if (!fs.existsSync(from.path)) throw new ImportError(`import of ${from.path}: no such file (a relative checkpoint path is read under the workers' ARTIFACT_DIR)`);
  try {
    imported = importTorchCheckpoint(from.path, config, task.method, task.checkpointDir, from.sha256);
  } catch (error) {
    if (error instanceof WeightMismatchError || error instanceof SafetensorsError) throw new ImportError(`import of ${from.path}: ${error.message}`);
    throw error;
  }
  const c = imported.checkpoint;
  return {
    kind: 'pretrain',
    finalCheckpoint: { step: c.step, path: c.path, sha256: c.manifestSha256 },
    steps: 0,
    seconds: (Date.now() - started) / 1000,
    parameters: imported.parameterCount,
    source: { path: from.path, sha256: imported.sourceSha256 },
  };
}
