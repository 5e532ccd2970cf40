/**
 * The compute child: the one process that loads TensorFlow.js and runs tasks. TensorFlow.js work
 * is synchronous and would starve the worker's event loop (BullMQ lock renewal, heartbeats), so
 * it runs here. The child stays warm across jobs: the backend is initialised once, data sets and
 * checkpoint weights stay loaded while their files are the same (libs/datasets, model-cache.ts),
 * and after each job it reports what it holds (tensors, RSS) so the worker can replace it when it
 * grew or ran its share of jobs (compute-process.ts). A task that fails, or that was asked to stop,
 * ends its child: the next job gets a fresh one.
 */
import { computeChildEnvSchema, loadEnv } from '@ddae/config';
import { performance } from 'node:perf_hooks';
import { computeTaskSchema, type BackendName } from '@ddae/contracts';
import { backendFromEnv, gpuFromEnv, runComputeTask, selectBackend, setModelCacheSize, tensorMemory } from '@ddae/compute';
import { childChannel } from './child-channel';
import { serializeError, type ChildUsage, type FromChild, type ToChild } from './child-protocol';

// The worker died: nobody would hear the result; stop at once (the job will be retried). A send
// that finds the channel closed leaves the same way, never through an unhandled EPIPE.
const { send, sendAndExit } = childChannel(process);

/** Set by a `stop` (cancel or shutdown): the running task checkpoints and ends, and so does the child. */
let stopRequested = false;
let running = false;

async function main(): Promise<void> {
  if (!process.send) throw new Error('compute-child must be started by the worker (with an IPC channel)');
  const env = loadEnv(computeChildEnvSchema);
  // The worker validated DDAE_BACKEND and DDAE_GPU (libs/config) and passes them on.
  const prefer: BackendName | 'auto' = backendFromEnv();
  const selected = await selectBackend(prefer, { gpu: gpuFromEnv() });
  const ready: FromChild = { type: 'ready', backend: selected.backend, detail: selected.detail, ...(selected.gpu ? { gpu: selected.gpu } : {}) };
  if (env.DDAE_PROBE_ONLY === '1') {
    sendAndExit(ready, 0);
    return;
  }
  setModelCacheSize(env.DDAE_MODEL_CACHE);
  send(ready);
  process.on('message', (raw: ToChild) => {
    if (raw.type === 'stop') stopRequested = true;
    // Between jobs only: the worker retires a child that has run its share or grew.
    if (raw.type === 'retire' && !running) process.exit(0);
    if (raw.type === 'run') void run(raw.task);
  });
}

function usage(): ChildUsage {
  return { ...tensorMemory(), rssBytes: process.memoryUsage().rss };
}

async function run(raw: unknown): Promise<void> {
  running = true;
  const started = performance.now();
  send({ type: 'started' });
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
    running = false;
    const done: FromChild = { type: 'done', result, usage: usage(), computeMs: Math.round((performance.now() - started) * 10) / 10 };
    // Asked to stop (the task may have finished first): this child's work is over either way.
    if (stopRequested) sendAndExit(done, 0);
    else send(done);
  } catch (error) {
    // A failed task may leave tensors or half-done state behind: the next job gets a fresh child.
    sendAndExit({ type: 'error', error: serializeError(error, 'task') }, 0);
  }
}

// Before 'ready': the backend failed to load or initialise (the machine's fault, see environment-fault.ts).
main().catch((error: unknown) => {
  sendAndExit({ type: 'error', error: serializeError(error, 'startup') }, 1);
});
