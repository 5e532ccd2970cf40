import type { ApiClient } from '../api-client';
import { DATASET_NAMES, formatLabelBudget, isLeaderboardCellRow, isLeaderboardConfigRow, LEADERBOARD_PER, METHODS, type LeaderboardCellRow, type LeaderboardConfigRowView } from '@ddae/contracts';
import { UsageError } from '../api-client';
import { pct, table } from '../table';

export async function leaderboard(api: ApiClient, opts: { dataset?: string; method?: string; sweep?: string; per?: string; limit?: string; cursor?: string; labels?: string; json: boolean }): Promise<string> {
  const r = await api.leaderboard({
    labels: labelBudgetOption(opts.labels),
    dataset: oneOf('--dataset', opts.dataset, DATASET_NAMES),
    method: oneOf('--method', opts.method, METHODS),
    per: oneOf('--per', opts.per, LEADERBOARD_PER),
    sweep: opts.sweep || undefined,
    limit: opts.limit || undefined,
    cursor: opts.cursor || undefined,
  });
  if (opts.json) return JSON.stringify(r);
  type Row = LeaderboardCellRow | LeaderboardConfigRowView;
  const noise = (x: Row) => (x.method === 'ddpm' ? `t=${x.noiseLevel}` : `σ=${x.noiseLevel}`);
  const protocol = (x: Row) => `${x.pooling}/${x.noiseProtocol}/${x.probeProtocol}`;
  const configs = r.rows.filter(isLeaderboardConfigRow);
  const cells = r.rows.filter(isLeaderboardCellRow);
  const rows =
    r.filter.per === 'config'
      ? table(
          ['#', 'mean %', '± std', 'seeds', 'min-max %', 'model', 'method', 'layer', 'noise', 'protocol', 'params', 'dataset'],
          configs.map((x) => [x.rank, pct(x.mean), x.std === null ? '-' : (100 * x.std).toFixed(2), x.n, `${pct(x.min)}-${pct(x.max)}`, x.modelName, x.method, x.layer, noise(x), protocol(x), x.parameters, x.dataset]),
        )
      : cells.some((x) => x.generation)
        ? // Generation quality beside the accuracy (never in the ranking), when the sweep measured it.
          table(
            ['#', 'acc %', 'FID', 'model', 'method', 'layer', 'noise', 'protocol', 'run', 'params', 'step', 'dataset'],
            cells.map((x) => [x.rank, pct(x.accuracy), x.generation ? x.generation.fid.toFixed(1) : '-', x.modelName, x.method, x.layer, noise(x), protocol(x), x.runKey, x.parameters, x.step, x.dataset]),
          )
        : table(
            ['#', 'acc %', 'model', 'method', 'layer', 'noise', 'protocol', 'run', 'params', 'step', 'dataset'],
            cells.map((x) => [x.rank, pct(x.accuracy), x.modelName, x.method, x.layer, noise(x), protocol(x), x.runKey, x.parameters, x.step, x.dataset]),
          );
  const baselines = r.baselines.length
    ? `\n\nbaselines (beside the ranking, never in it)\n${table(
        ['dataset', 'kind', 'acc %', 'features', 'cell'],
        r.baselines.map((b) => [b.dataset, b.kind === 'untrained' ? 'untrained network' : b.kind, pct(b.accuracy), b.featureDim, 'layer' in b ? `${b.model} ${b.layer} ${b.method === 'edm' ? 'σ' : 't'}=${b.noiseLevel}` : null]),
      )}`
    : '\n\n(no baselines computed yet)';
  const extractors = [...new Set(cells.flatMap((x) => (x.generation ? [`${x.generation.extractor}, ${x.generation.samples} samples`] : [])))];
  const fid = extractors.length ? `\n\nFID: of each run's samples against the test split, in ${extractors.join('; ')} (lower is better; not part of the ranking)` : '';
  const more = r.nextCursor ? `\n\nmore rows: add --cursor ${r.nextCursor}` : '';
  // Provenance of the models pretrained elsewhere (models[].checkpoint), one line each.
  const imported = new Map<string, { path: string; sha256: string | null }>();
  for (const x of r.rows as Row[]) if (x.source) imported.set(`${x.sweepId} ${x.modelName}`, x.source);
  const sources = imported.size
    ? `\n\nimported models (pretrained elsewhere, not trained by the sweep)\n${table(
        ['model', 'source', 'sha256'],
        [...imported].map(([key, src]) => [key.slice(key.indexOf(' ') + 1), src.path, src.sha256]),
      )}`
    : '';
  const budget = r.filter.labels === 'all' ? 'label budget: all of each protocol\'s training images' : `label budget: ${r.filter.labels} labelled images in total (class-balanced)`;
  return `${budget}\n\n${r.rows.length ? rows : '(no probe results yet)'}${fid}${more}${sources}${baselines}`;
}

export async function workers(api: ApiClient, opts: { json: boolean }): Promise<string> {
  const r = await api.workers();
  if (opts.json) return JSON.stringify(r);
  const rows = table(
    ['worker', 'host', 'backend', 'device', 'data sets', 'state', 'job', 'last heartbeat'],
    r.workers.map((w) => [w.id, w.hostname, w.backend, w.device, w.datasets.join(',') || 'none', w.state, w.currentJobId, w.lastHeartbeatAt]),
  );
  // An unhealthy worker takes no jobs: say why under the table, one line each (the reason is long).
  const why = r.workers.filter((w) => w.unhealthyReason).map((w) => `${w.id} is unhealthy: ${w.unhealthyReason}`);
  return why.length ? `${rows}\n\n${why.join('\n')}` : rows;
}

/**
 * `--labels N|all`: a label budget (labelled training images in total, class-balanced), checked
 * here so the message names the flag; absent: all.
 */
export function labelBudgetOption(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'all' || /^[1-9][0-9]{0,8}$/.test(value)) return value === 'all' ? 'all' : formatLabelBudget(Number(value));
  throw new UsageError(`--labels must be all or a positive number of labelled images (a budget of the sweep's probe.labels), got "${value}"`);
}

/** An option's value checked against its allowed values (the API would answer 400; the CLI names the flag). */
function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined || value === '') return undefined;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
}
