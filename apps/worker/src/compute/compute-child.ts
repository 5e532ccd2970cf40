/**
 * The compute child: the one process that loads TensorFlow.js and runs a task. TensorFlow.js work
 * is synchronous and would starve the worker's event loop (BullMQ lock renewal, heartbeats), so
 * it runs here, one fresh process per job (no tensor memory carried across jobs).
 */
import { computeChildEnvSchema, loadEnv } from '@ddae/config';
import { existsSync } from 'node:fs';
import { DATASET_NAMES, computeTaskSchema, type BackendName } from '@ddae/contracts';
import { backendFromEnv, gpuFromEnv, runComputeTask, selectBackend } from '@ddae/compute';
import { datasetDir } from '@ddae/datasets';
import { childChannel } from './child-channel';
import { serializeError, type FromChild, type ToChild } from './child-protocol';

// The worker died: nobody would hear the result; stop at once (the job will be retried). A send
// that finds the channel closed leaves the same way, never through an unhandled EPIPE.
const { send, sendAndExit } = childChannel(process);

let stopRequested = false;

async function main(): Promise<void> {
  if (!process.send) throw new Error('compute-child must be started by the worker (with an IPC channel)');
  // The worker validated DDAE_BACKEND and DDAE_GPU (libs/config) and passes them on.
  const prefer: BackendName | 'auto' = backendFromEnv();
  const selected = await selectBackend(prefer, { gpu: gpuFromEnv() });
  const ready: FromChild = { type: 'ready', backend: selected.backend, detail: selected.detail, ...(selected.gpu ? { gpu: selected.gpu } : {}) };
  if (loadEnv(computeChildEnvSchema).DDAE_PROBE_ONLY === '1') {
    // The data sets this machine holds now: one that vanishes later is the machine's fault, not the job's.
    sendAndExit({ ...ready, datasetDirs: DATASET_NAMES.map((name) => datasetDir(name)).filter((dir) => existsSync(dir)) }, 0);
    return;
  }
  send(ready);
  process.on('message', (raw: ToChild) => {
    if (raw.type === 'stop') stopRequested = true;
    if (raw.type === 'run') void run(raw.task);
  });
}

async function run(raw: unknown): Promise<void> {
  try {
    const task = computeTaskSchema.parse(raw);
    let lastProgress = 0;
    const result = await runComputeTask(task, {
      progress: (fraction, detail) => {
        const now = Date.now();
        if (now - lastProgress < 500 && fraction < 1) return;
        lastProgress = now;
        send({ type: 'progress', fraction, ...detail });
      },
      checkpoint: (info) => send({ type: 'checkpoint', info }),
      progressProbe: (point) => send({ type: 'progress-probe', point }),
      trainLoss: (point) => send({ type: 'train-loss', point }),
      shouldStop: () => stopRequested,
    });
    sendAndExit({ type: 'done', result }, 0);
  } catch (error) {
    sendAndExit({ type: 'error', error: serializeError(error, 'task') }, 0);
  }
}

// Before 'ready': the backend failed to load or initialise (the machine's fault, see environment-fault.ts).
main().catch((error: unknown) => {
  sendAndExit({ type: 'error', error: serializeError(error, 'startup') }, 1);
});
