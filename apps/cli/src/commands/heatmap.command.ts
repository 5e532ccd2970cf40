import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CliError, type ApiClient } from '../api-client';
import { renderHeatmapPng, type HeatmapCell } from '@ddae/render';

interface SweepHead {
  id: string;
  name: string;
  dataset: string;
  status: string;
}
interface BoardView {
  rows: { protocolKey: string }[];
  baselines: { kind: string; accuracy: number | null; protocolKey: string }[];
}

/** Renders a sweep's layer x noise heatmap (and its data set's pixel baseline) to a PNG file. */
export async function heatmapPng(api: ApiClient, id: string, opts: { out?: string; json: boolean }): Promise<string> {
  const sweepPath = `/api/sweeps/${encodeURIComponent(id)}`;
  const sweep = await api.request<SweepHead>('GET', sweepPath);
  const [{ cells }, board] = await Promise.all([
    api.request<{ cells: HeatmapCell[] }>('GET', `${sweepPath}/heatmap`),
    api.request<BoardView>('GET', `/api/leaderboard?${new URLSearchParams({ dataset: sweep.dataset, sweep: sweep.id, limit: '1' })}`),
  ]);
  // The pixel baseline of the sweep's protocol if there is one, else the data set's best.
  const pixels = board.baselines.filter((b) => b.kind === 'pixels' && b.accuracy !== null);
  const baseline = pixels.find((b) => b.protocolKey === board.rows[0]?.protocolKey) ?? pixels[0];
  const rendered = renderHeatmapPng({
    title: `${sweep.name} - ${sweep.dataset}`,
    subtitle: `linear-probe test accuracy, mean ± std over seeds (${sweep.status.toLowerCase()})`,
    cells,
    baseline: baseline ? { kind: baseline.kind, accuracy: baseline.accuracy as number } : null,
  });
  const out = opts.out ?? `heatmap-${sweep.id.slice(0, 8)}.png`;
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await writeFile(out, rendered.png);
  const summary = { out, width: rendered.width, height: rendered.height, cells: cells.length, sweep: sweep.id };
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
export async function heatmapFromProbeFiles(files: string[], opts: { labels?: string; baseline?: string; title?: string; out?: string; json: boolean }): Promise<string> {
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
    for (const c of parsed.cells) cells.push({ modelName: labels[i], method: parsed.method ?? 'ddpm', layer: c.layer, noiseLevel: c.noiseLevel, mean: c.accuracy, std: null, n: 1 });
  }
  let baseline: { kind: string; accuracy: number } | null = null;
  if (opts.baseline) {
    const m = /^([a-z]+)=([0-9.]+)$/.exec(opts.baseline);
    if (!m || !(Number(m[2]) > 0 && Number(m[2]) <= 1)) throw new CliError(`--baseline "${opts.baseline}": use kind=accuracy, e.g. --baseline pixels=0.8451`);
    baseline = { kind: m[1], accuracy: Number(m[2]) };
  }
  const rendered = renderHeatmapPng({ title: opts.title ?? `layer x noise${dataset ? ` - ${dataset}` : ''}`, subtitle: 'linear-probe test accuracy', cells, baseline });
  const out = opts.out ?? 'heatmap.png';
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await writeFile(out, rendered.png);
  const summary = { out, width: rendered.width, height: rendered.height, cells: cells.length, grids: labels };
  return opts.json ? JSON.stringify(summary) : `wrote ${out} (${rendered.width}x${rendered.height} px, ${cells.length} cells)`;
}
