import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { renderLineChartPng, type ChartPanel } from '@ddae/render';
import type { ApiClient } from '../api-client';
import type { LossCurves, ProgressView } from '@ddae/contracts';
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

/** `GET /api/sweeps/:id/loss` (libs/contracts' lossCurvesSchema), as far as the chart reads it. */
type LossView = Omit<LossCurves, 'runs'> & { runs: Pick<LossCurves['runs'][number], 'run' | 'points'>[] };

/**
 * The progress chart of a sweep as a PNG: the training loss against step of every trained run
 * and, when the sweep probes during pretraining, the best probe accuracy against step.
 */
export function progressChart(sweep: { id: string; name: string; dataset: string }, loss: LossView, progress: ProgressView): ReturnType<typeof renderLineChartPng> {
  const probed = progress.runs.filter((r) => r.points.length > 0);
  const panels: ChartPanel[] = [
    {
      title: `training loss (mean over each window of ${loss.lossEvery} steps)`,
      xLabel: 'optimiser step',
      yLabel: 'loss',
      series: loss.runs.map((r) => ({ name: r.run, points: r.points.map((p) => ({ x: p.step, y: p.loss })) })),
      empty: 'no loss recorded yet',
    },
  ];
  if (probed.length) {
    panels.push({
      title: 'probe accuracy during pretraining (best cell of the small grid)',
      xLabel: 'optimiser step',
      yLabel: 'test accuracy %',
      series: probed.map((r) => ({ name: r.run, points: r.points.map((p) => ({ x: p.step, y: 100 * p.accuracy })) })),
    });
  }
  return renderLineChartPng({ title: `${sweep.name} - ${sweep.dataset}`, subtitle: `sweep ${sweep.id.slice(0, 8)}: trained runs against step`, panels });
}

/** `ddae progress <id> --out FILE`: writes the progress chart (loss, and probe accuracy when probed) as a PNG. */
export async function sweepProgressPng(api: ApiClient, id: string, opts: { out: string; json: boolean }): Promise<string | undefined> {
  const sweep = await api.getSweep(id);
  const [loss, progress] = await Promise.all([api.loss(sweep.id), api.progress(sweep.id)]);
  const chart = progressChart(sweep, loss, progress);
  if (opts.out === '-') {
    process.stdout.write(chart.png);
    return undefined;
  }
  await mkdir(path.dirname(path.resolve(opts.out)), { recursive: true });
  await writeFile(opts.out, chart.png);
  const summary = { out: opts.out, width: chart.width, height: chart.height, panels: chart.panels.length, sweep: sweep.id };
  return opts.json ? JSON.stringify(summary) : `wrote ${opts.out} (${chart.width}x${chart.height} px: ${chart.panels.length === 2 ? 'loss and probe accuracy' : 'loss'} against step)`;
}
