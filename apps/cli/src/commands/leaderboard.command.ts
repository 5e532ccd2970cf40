import type { ApiClient } from '../api-client';
import { pct, table } from '../table';

interface LeaderboardView {
  filter?: { per?: string };
  nextCursor?: string | null;
  rows: {
    rank: number; accuracy: number; layer: string; noiseLevel: number; method: string; dataset: string; modelName: string; runKey: string; seed: number; parameters: number | null; step: number; sweepName: string;
    pooling: string; noiseProtocol: string; probeProtocol: string;
    // per=config
    mean?: number; std?: number | null; n?: number; min?: number; max?: number;
  }[];
  baselines: { dataset: string; kind: string; accuracy: number | null; featureDim: number | null; model?: string; layer?: string; noiseLevel?: number; method?: string }[];
}

export async function leaderboard(api: ApiClient, opts: { dataset?: string; method?: string; sweep?: string; per?: string; limit?: string; cursor?: string; json: boolean }): Promise<string> {
  const query = new URLSearchParams();
  for (const key of ['dataset', 'method', 'sweep', 'per', 'limit', 'cursor'] as const) {
    const value = opts[key];
    if (value) query.set(key, value);
  }
  const r = await api.request<LeaderboardView>('GET', `/api/leaderboard?${query}`);
  if (opts.json) return JSON.stringify(r);
  const noise = (x: LeaderboardView['rows'][number]) => (x.method === 'ddpm' ? `t=${x.noiseLevel}` : `σ=${x.noiseLevel}`);
  const protocol = (x: LeaderboardView['rows'][number]) => `${x.pooling}/${x.noiseProtocol}/${x.probeProtocol}`;
  const rows =
    r.filter?.per === 'config'
      ? table(
          ['#', 'mean %', '± std', 'seeds', 'min-max %', 'model', 'method', 'layer', 'noise', 'protocol', 'params', 'dataset'],
          r.rows.map((x) => [x.rank, pct(x.mean ?? null), x.std == null ? '-' : (100 * x.std).toFixed(2), x.n, `${pct(x.min ?? null)}-${pct(x.max ?? null)}`, x.modelName, x.method, x.layer, noise(x), protocol(x), x.parameters, x.dataset]),
        )
      : table(
          ['#', 'acc %', 'model', 'method', 'layer', 'noise', 'protocol', 'run', 'params', 'step', 'dataset'],
          r.rows.map((x) => [x.rank, pct(x.accuracy), x.modelName, x.method, x.layer, noise(x), protocol(x), x.runKey, x.parameters, x.step, x.dataset]),
        );
  const baselines = r.baselines.length
    ? `\n\nbaselines (beside the ranking, never in it)\n${table(
        ['dataset', 'kind', 'acc %', 'features', 'cell'],
        r.baselines.map((b) => [b.dataset, b.kind === 'untrained' ? 'untrained network' : b.kind, pct(b.accuracy), b.featureDim, b.layer ? `${b.model} ${b.layer} ${b.method === 'edm' ? 'σ' : 't'}=${b.noiseLevel}` : null]),
      )}`
    : '\n\n(no baselines computed yet)';
  const more = r.nextCursor ? `\n\nmore rows: add --cursor ${r.nextCursor}` : '';
  return (r.rows.length ? rows : '(no probe results yet)') + more + baselines;
}

export async function workers(api: ApiClient, opts: { json: boolean }): Promise<string> {
  const r = await api.request<{ workers: { id: string; hostname: string; backend: string; device: string; state: string; currentJobId: string | null; lastHeartbeatAt: string }[] }>('GET', '/api/workers');
  if (opts.json) return JSON.stringify(r);
  return table(['worker', 'host', 'backend', 'device', 'state', 'job', 'last heartbeat'], r.workers.map((w) => [w.id, w.hostname, w.backend, w.device, w.state, w.currentJobId, w.lastHeartbeatAt]));
}
