import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ApiClient } from '../api-client';
import { renderHeatmapPng, type HeatmapCell } from '../heatmap-png';

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
