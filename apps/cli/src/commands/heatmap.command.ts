import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CliError, UsageError, type ApiClient } from '../api-client';
import { renderHeatmapPng, type HeatmapCell } from '@ddae/render';
import { labelBudgetOption } from './leaderboard.command';

/** Writes a PNG to `out` (parent directories created), or to stdout for "-"; refuses to guess a file name. */
async function writePng(png: Buffer, out: string | undefined, example: string): Promise<string> {
  if (out === undefined) throw new UsageError(`heatmap needs --out FILE (or --out - for stdout): ${example}`);
  if (out === '-') {
    process.stdout.write(png);
    return out;
  }
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await writeFile(out, png);
  return out;
}

/**
 * Renders a sweep's layer x noise heatmap to a PNG: the trained models' grids, then the untrained
 * network's (a control, never outlined), and a legend comparing the best trained cell with the
 * pixel baseline of the same protocol and the untrained network's best cell.
 */
export async function heatmapPng(api: ApiClient, id: string, opts: { out?: string; labels?: string; json: boolean }): Promise<string | undefined> {
  if (opts.out === undefined) await writePng(Buffer.alloc(0), undefined, `npm run ddae -- heatmap ${id} --out heatmap.png`);
  const labels = labelBudgetOption(opts.labels);
  const sweep = await api.getSweep(id);
  const [{ cells, labels: budget }, verdict] = await Promise.all([api.heatmap(sweep.id, { labels }), api.verdict(sweep.id, { labels })]);
  const rendered = renderHeatmapPng({
    title: `${sweep.name} - ${sweep.dataset}`,
    subtitle: `linear-probe test accuracy, mean ± std over seeds, ${budget === 'all' ? 'all labels' : `${budget} labels`} (${sweep.status.toLowerCase()})`,
    cells,
    baseline: verdict.pixels ? { kind: 'pixels', accuracy: verdict.pixels.accuracy } : null,
  });
  const out = await writePng(rendered.png, opts.out, '');
  if (out === '-') return undefined;
  const summary = { out, width: rendered.width, height: rendered.height, cells: cells.length, sweep: sweep.id, labels: budget };
  return opts.json ? JSON.stringify(summary) : `wrote ${out} (${rendered.width}x${rendered.height} px, ${cells.length} cells)`;
}

interface ProbeJson {
  method?: string;
  step?: number;
  dataset?: string;
  cells?: { layer: string; noiseLevel: number; accuracy: number }[];
}

/**
 * Renders the heatmap of one or more `ddae probe --json` outputs (files holding that JSON, its
 * last line counts), without any service: one grid per file, labelled by `--labels` (comma-
 * separated, default the file names), beside an optional `--baseline pixels=0.8451`.
 */
export async function heatmapFromProbeFiles(files: string[], opts: { labels?: string; baseline?: string; title?: string; out?: string; json: boolean }): Promise<string | undefined> {
  const { readFile } = await import('node:fs/promises');
  if (files.length === 0) throw new CliError('heatmap --from needs at least one file written by `ddae probe ... --json`');
  const labels = opts.labels ? opts.labels.split(',').map((s) => s.trim()) : files.map((f) => path.basename(f, path.extname(f)));
  if (labels.length !== files.length) throw new CliError(`--labels names ${labels.length} grid(s) for ${files.length} file(s): give one label per file`);
  const cells: HeatmapCell[] = [];
  let dataset = '';
  for (const [i, file] of files.entries()) {
    const text = await readFile(file, 'utf8').catch((e: Error) => {
      throw new CliError(`cannot read ${file}: ${e.message}`);
    });
    const last = text.trim().split('\n').pop() ?? '';
    let parsed: ProbeJson;
    try {
      parsed = JSON.parse(last) as ProbeJson;
    } catch {
      throw new CliError(`${file}: its last line is not JSON; write it with npm run -s ddae -- probe ... --json > ${file}`);
    }
    if (!Array.isArray(parsed.cells) || parsed.cells.length === 0) throw new CliError(`${file}: no "cells" (is it the output of ddae probe --checkpoint ... --json?)`);
    dataset ||= parsed.dataset ?? '';
    // A checkpoint of step 0 is the initial weights: the untrained-network control.
    const untrained = parsed.step === 0;
    for (const c of parsed.cells) cells.push({ modelName: labels[i], untrained, method: parsed.method ?? 'ddpm', layer: c.layer, noiseLevel: c.noiseLevel, mean: c.accuracy, std: null, n: 1 });
  }
  let baseline: { kind: string; accuracy: number } | null = null;
  if (opts.baseline) {
    const m = /^([a-z]+)=([0-9.]+)$/.exec(opts.baseline);
    if (!m || !(Number(m[2]) > 0 && Number(m[2]) <= 1)) throw new CliError(`--baseline "${opts.baseline}": use kind=accuracy, e.g. --baseline pixels=0.8451`);
    baseline = { kind: m[1], accuracy: Number(m[2]) };
  }
  const rendered = renderHeatmapPng({ title: opts.title ?? `layer x noise${dataset ? ` - ${dataset}` : ''}`, subtitle: 'linear-probe test accuracy', cells, baseline });
  const out = await writePng(rendered.png, opts.out, 'npm run ddae -- heatmap --from a.json --out heatmap.png');
  if (out === '-') return undefined;
  const summary = { out, width: rendered.width, height: rendered.height, cells: cells.length, grids: labels };
  return opts.json ? JSON.stringify(summary) : `wrote ${out} (${rendered.width}x${rendered.height} px, ${cells.length} cells)`;
}
