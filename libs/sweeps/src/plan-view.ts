import type { SweepPlan } from './plan';

/** Rows of each kind a dry run lists at most; a bigger plan answers its counts and the first rows. */
export const DRY_RUN_SAMPLE_ROWS = 200;

export interface PlanView {
  runs: { key: string; method: string; model: string; untrained: boolean; seed: number; steps: number; backbone: string; unet?: unknown; dit?: unknown; progressProbe: unknown; checkpoint?: { path: string; sha256?: string } }[];
  probeTasks: { run: string; noiseLevel: number; layers: string[]; labels: (number | 'all')[] }[];
  baselines: { dataset: string; kind: string; labels: number | 'all' }[];
  /**
   * Present only when the plan has more runs or probe tasks than a dry run lists: how many of each
   * are shown (the first, in plan order) of how many planned. `counts` has every total.
   */
  sampled?: { runs: { shown: number; of: number }; probeTasks: { shown: number; of: number } };
}

/**
 * What `POST /api/sweeps?dryRun=true` shows of a plan: every row of a plan of up to `limit` runs
 * and probe tasks (as always), and of a bigger one (up to 100,000 probe cells) the first `limit`
 * of each with `sampled` saying so, not a response of every row.
 */
export function planView(plan: SweepPlan, limit = DRY_RUN_SAMPLE_ROWS): PlanView {
  const runs = plan.runs.slice(0, limit).map((r) => ({
    key: r.key, method: r.method, model: r.modelName, untrained: r.untrained, seed: r.seed, steps: r.hyper.steps, backbone: r.backbone, ...(r.unet ? { unet: r.unet } : { dit: r.dit }), progressProbe: r.hyper.progressProbe ?? null,
    ...(r.hyper.importFrom ? { checkpoint: r.hyper.importFrom } : {}),
  }));
  const probeTasks = plan.probeTasks.slice(0, limit).map((t) => ({ run: t.runKey, noiseLevel: t.noiseLevel, layers: t.layers, labels: t.labels ?? ['all' as const] }));
  const baselines = plan.baselines.map((b) => ({ dataset: b.dataset, kind: b.kind, labels: b.protocol.labels ?? ('all' as const) }));
  const view: PlanView = { runs, probeTasks, baselines };
  if (plan.runs.length > limit || plan.probeTasks.length > limit) {
    view.sampled = { runs: { shown: runs.length, of: plan.runs.length }, probeTasks: { shown: probeTasks.length, of: plan.probeTasks.length } };
  }
  return view;
}
