import type { ApiClient } from '../api-client';
import type { ProgressView } from '@ddae/contracts';
import { pct, table } from '../table';

/** One block per run: a heading (status, steps, early stop), then one row per probed step with the best and every cell. */
export function renderProgress(view: ProgressView): string {
  if (!view.runs.length) return `sweep ${view.sweepId}: no trained runs`;
  return view.runs
    .map((r) => {
      const stop = r.stoppedEarlyAt !== null ? `  stopped early at step ${r.stoppedEarlyAt} of ${r.steps} (the probe plateaued)` : '';
      const heading = `${r.run}  [${r.status}]  steps ${r.stepsDone}/${r.steps}  ${r.every === null ? 'no probing during pretraining' : `probed every ${r.every} steps`}${stop}`;
      if (!r.points.length) return `${heading}\n  (no probe yet)`;
      const noise = r.method === 'edm' ? 'σ' : 't';
      const cells = [...new Set(r.points.flatMap((p) => p.cells.map((c) => `${c.layer} ${noise}=${c.noiseLevel}`)))];
      const best = Math.max(...r.points.map((p) => p.accuracy));
      const rows = r.points.map((p) => {
        const byCell = new Map(p.cells.map((c) => [`${c.layer} ${noise}=${c.noiseLevel}`, c.accuracy]));
        return [p.step, pct(p.accuracy) + (p.accuracy === best ? ' *' : ''), ...cells.map((c) => pct(byCell.get(c)))];
      });
      return `${heading}\n${table(['step', 'best %', ...cells.map((c) => `${c} %`)], rows)}`;
    })
    .join('\n\n');
}

/** `ddae progress <sweepId>`: accuracy against step of every run of a sweep (probing during pretraining). */
export async function sweepProgress(api: ApiClient, id: string, opts: { json: boolean }): Promise<string> {
  const view = await api.progress(id);
  return opts.json ? JSON.stringify(view) : renderProgress(view);
}
