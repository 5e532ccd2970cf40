import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { VerdictView as VerdictWire } from '@ddae/contracts';
import { UsageError, type ApiClient } from '../api-client';
import { labelBudgetOption } from './leaderboard.command';

/** One (model, layer, noise level) cell of the verdict (the contract's row): what the sentence and the summary read of it. */
export type VerdictCell = Pick<VerdictWire['best'] & object, 'mean' | 'std' | 'n' | 'seeds' | 'layer' | 'noiseLevel' | 'method' | 'modelName' | 'protocolKey'> &
  Partial<Pick<VerdictWire['best'] & object, 'finetuned'>>;

/** `GET /api/sweeps/:id/verdict` (libs/contracts' verdictSchema), as far as the CLI reads it. */
export type VerdictView = Omit<VerdictWire, 'best' | 'untrained' | 'labels'> & { best: VerdictCell | null; untrained: VerdictCell | null; labels?: VerdictWire['labels'] };

/** `.demo/summary.json`: what the demo found, for scripts (accuracies and margins as fractions). */
export interface DemoSummary {
  seconds: number;
  sweepId: string;
  best: { model: string; layer: string; noise: number; accuracy: number; std: number | null; seeds: number[] } | null;
  baselines: {
    pixels: { accuracy: number } | null;
    untrained: { accuracy: number; layer: string; noise: number } | null;
  };
  margins: { pixels: number | null; untrained: number | null };
}

/**
 * The summary the demo writes, built from the sweep's verdict: the trained best cell (mean over its
 * seeds, never the control), the raw-pixel baseline, the untrained network's best cell, and both
 * margins exactly as the API computed them.
 */
export function demoSummary(verdict: VerdictView, seconds: number): DemoSummary {
  const { best, untrained, pixels } = verdict;
  // Means over seeds and their differences carry float noise (0.7250000000000001): 6 decimals are exact for test splits up to 10^6 images.
  const r = (x: number | null): number | null => (x === null ? null : Math.round(x * 1e6) / 1e6);
  return {
    seconds: Math.round(seconds),
    sweepId: verdict.sweepId,
    best: best && { model: best.modelName, layer: best.layer, noise: best.noiseLevel, accuracy: r(best.mean) as number, std: r(best.std), seeds: [...best.seeds] },
    baselines: {
      pixels: pixels && { accuracy: r(pixels.accuracy) as number },
      untrained: untrained && { accuracy: r(untrained.mean) as number, layer: untrained.layer, noise: untrained.noiseLevel },
    },
    margins: { pixels: r(verdict.margins.pixels), untrained: r(verdict.margins.untrained) },
  };
}

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
const points = (x: number): string => `${x >= 0 ? '+' : '-'}${(100 * Math.abs(x)).toFixed(2)} points`;
const noise = (c: { method: string; noiseLevel: number }): string => `${c.method === 'edm' ? 'σ' : 't'}=${c.noiseLevel}`;

/**
 * One sentence: the best trained cell (layer, noise level, mean ± spread over seeds) against raw
 * pixels and the untrained network's best cell, with both margins, and whether each margin is at
 * least one point and more than twice the spread. A cell that does not beat a baseline is said so.
 */
export function verdictSentence(v: VerdictView): string {
  const { best } = v;
  if (!best) return `Sweep ${v.sweepId.slice(0, 8)}: no trained model has a probe result yet, so there is no verdict.`;
  const spread = best.std ?? 0;
  const seeds = `${best.n} ${best.n === 1 ? 'seed' : 'seeds'}`;
  const budget = v.labels === undefined || v.labels === 'all' ? '' : `, ${v.labels} labels`;
  const head = `Best trained cell: ${best.modelName} ${best.layer} ${noise(best)}, ${pct(best.mean)}${best.std !== null ? ` ± ${(100 * best.std).toFixed(2)}` : ''} (mean of ${seeds}${budget})`;
  const against = (name: string, accuracy: number, margin: number): string => {
    if (margin <= 0) return `does not beat ${name} (${pct(accuracy)}): ${points(margin)}`;
    const clear = margin >= 0.01 && margin > 2 * spread;
    return `beats ${name} (${pct(accuracy)}) by ${points(margin)}${clear ? '' : best.std === null ? ' (one seed: no spread to compare with)' : ' (less than 1 point or not above twice the spread)'}`;
  };
  const parts: string[] = [];
  if (v.pixels && v.margins.pixels !== null) parts.push(against('raw pixels', v.pixels.accuracy, v.margins.pixels));
  else parts.push('has no raw-pixel baseline to compare with');
  if (v.untrained && v.margins.untrained !== null) parts.push(against(`the untrained network's best cell ${v.untrained.layer} ${noise(v.untrained)}`, v.untrained.mean, v.margins.untrained));
  else parts.push('has no untrained-network control to compare with');
  const ft = best.finetuned;
  // Probe to choose, fine-tune to deploy: the chosen cell trained end to end, said apart from the linear comparison.
  const tuned = ft
    ? ` Fine-tuned end to end at that cell (${ft.labels === 'all' ? 'all labels' : `${ft.labels} labels`}, ${ft.n} ${ft.n === 1 ? 'seed' : 'seeds'}): ${pct(ft.mean)}, ${points(ft.mean - best.mean)} against its linear probe.`
    : '';
  return `${head} ${parts.join(' and ')}; same probe protocol.${tuned}`;
}

/** `ddae verdict <id>`: the verdict sentence (or its JSON); with --summary FILE also writes the demo's summary (atomically). */
export async function sweepVerdict(api: ApiClient, id: string, opts: { json: boolean; summary?: string; seconds?: string; labels?: string }): Promise<string> {
  if (opts.seconds !== undefined && opts.summary === undefined) throw new UsageError('--seconds goes with --summary FILE: npm run ddae -- verdict <id> --summary .demo/summary.json --seconds 600');
  let seconds = 0;
  if (opts.seconds !== undefined) {
    seconds = Number(opts.seconds);
    if (!Number.isFinite(seconds) || seconds < 0) throw new UsageError(`--seconds must be a number of seconds >= 0, got "${opts.seconds}"`);
  }
  const verdict = await api.verdict(id, { labels: labelBudgetOption(opts.labels) });
  if (opts.summary !== undefined) {
    const file = path.resolve(opts.summary);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.tmp`, `${JSON.stringify(demoSummary(verdict, seconds), null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }
  return opts.json ? JSON.stringify(verdict) : verdictSentence(verdict);
}
