import type { ComputeHooks, ComputeResult, ComputeTask } from '@ddae/contracts';
import { runBaselineTask } from './baseline.task';
import { runPretrainTask } from './pretrain.task';
import { runFinetuneTask } from './finetune.task';
import { runProbeTask } from './probe.task';
import { computeDevice } from './backend';
import { withSampleGrid } from './sample-grid';
import { withGenerationQuality } from './gen-quality/evaluate';

export * from './backend';
export { GpuDeviceError, GpuDeviceLostError, GpuOutOfMemoryError, gpuFromEnv, listAdapters, releaseWebGpu, webGpuFault, webGpuMessages } from './webgpu';
export { GpuSelectionError } from './gpu-adapters';
export { MAX_WASM_THREADS, wasmThreading, wasmThreadsFromEnv, type WasmThreading } from './wasm-threads';
export * from './pretrain.task';
export * from './probe.task';
export * from './finetune.task';
export * from './feature-cache';
export * from './model-cache';
export * from './progress-probe';
export * from './baseline.task';
export * from './sample-grid';
export * from './gen-quality';

/**
 * Runs any compute task on the backend this process selected (call `selectBackend` first); the
 * result says which backend (and GPU adapter) computed it.
 */
export async function runComputeTask(task: ComputeTask, hooks: ComputeHooks = {}): Promise<ComputeResult> {
  const result = await runTask(task, hooks);
  const device = await computeDevice();
  return device ? { ...result, device } : result;
}

function runTask(task: ComputeTask, hooks: ComputeHooks): Promise<ComputeResult> {
  switch (task.kind) {
    case 'pretrain':
      return runPretrainTask(task, hooks)
        .then((result) => withSampleGrid(task, result))
        .then((result) => withGenerationQuality(task, result));
    case 'probe':
      // The same task row and result shape; its protocol says how the cell is trained.
      return task.protocol.probe === 'finetune' ? runFinetuneTask(task, hooks) : runProbeTask(task, hooks);
    case 'baseline':
      return runBaselineTask(task, hooks);
  }
}
