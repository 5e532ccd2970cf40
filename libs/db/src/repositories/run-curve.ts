import type { Run } from '../generated/client';

/** What heads each run's curve (loss, progress): which run, and how far it trained. */
export interface RunCurveHead {
  runId: string;
  run: string;
  model: string;
  method: string;
  seed: number;
  status: string;
  steps: number;
  stepsDone: number;
}

/** The head of a run's curve, from its row. */
export function runCurveHead(r: Run): RunCurveHead {
  return { runId: r.id, run: r.key, model: r.modelName, method: r.method, seed: r.seed, status: r.status, steps: r.steps, stepsDone: r.stepsDone };
}
