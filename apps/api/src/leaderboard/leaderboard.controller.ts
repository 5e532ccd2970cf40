import { Controller, Get, Query } from '@nestjs/common';
import { labelBudgetOf, labelsFromQuery, leaderboardQuerySchema, leaderboardSchema } from '@ddae/contracts';
import { BaselineRepository, InvalidCursorError, LeaderboardRepository, RunGenerationQualityRepository } from '@ddae/db';
import { ApiError } from '../core/api-error';
import { reply } from '../core/reply';
import { parseOr400 } from '../core/zod-query';
import { SweepIdResolver } from '../sweeps/sweep-id';

@Controller('leaderboard')
export class LeaderboardController {
  constructor(
    private readonly leaderboard: LeaderboardRepository,
    private readonly baselines: BaselineRepository,
    private readonly generation: RunGenerationQualityRepository,
    private readonly ids: SweepIdResolver,
  ) {}

  @Get()
  async get(@Query() query: unknown) {
    const q = parseOr400(leaderboardQuerySchema, query, 'query');
    const sweepId = q.sweep === undefined ? undefined : await this.ids.resolve(q.sweep, 'query.sweep');
    const labels = labelsFromQuery(q.labels);
    const filter = { dataset: q.dataset, method: q.method, sweepId, per: q.per, limit: q.limit, cursor: q.cursor, labels, protocol: q.protocol };
    let page: Awaited<ReturnType<LeaderboardRepository['page']>>;
    try {
      page = await this.leaderboard.page(filter);
    } catch (error) {
      if (error instanceof InvalidCursorError) throw new ApiError('invalid_request', 'invalid query', [{ path: 'query.cursor', message: error.message }]);
      throw error;
    }
    const rows: { dataset: string }[] = page.rows;
    const datasets = q.dataset ? [q.dataset] : [...new Set(rows.map((r) => r.dataset))];
    const runIds = page.rows.flatMap((r) => ('runId' in r ? [r.runId] : []));
    const [pixels, untrained, generation] = await Promise.all([
      datasets.length ? this.baselines.forDatasets(datasets, labels) : [],
      this.leaderboard.untrainedBest(datasets, sweepId, labels),
      this.generation.latestOfRuns([...new Set(runIds)]),
    ]);
    return reply(leaderboardSchema, {
      filter: { ...q, sweep: sweepId, labels: labelBudgetOf(labels) },
      // Every row says its budget (all rows share the filter's).
      rows: page.rows.map((r) => {
        // A run's generation quality beside its accuracy (cell and run rows), never folded into it.
        const g = 'runId' in r ? generation.get(r.runId) : undefined;
        return {
          ...r,
          labels: labelBudgetOf(r.labels),
          ...('finetuned' in r ? { finetuned: r.finetuned ? { ...r.finetuned, labels: labelBudgetOf(r.finetuned.labels) } : null } : {}),
          ...(g ? { generation: { fid: g.fid, kidMean: g.kidMean, kidStd: g.kidStd, samples: g.samples, step: g.step, extractor: g.extractor } } : {}),
        };
      }),
      nextCursor: page.nextCursor,
      // Beside the ranking, never in it: the raw-pixel baselines, and the untrained network's best cell (named).
      baselines: [
        ...pixels.map((b) => ({ dataset: b.dataset, kind: b.kind, accuracy: b.accuracy, featureDim: b.featureDim, protocolKey: b.protocolKey, labels: labelBudgetOf(b.labels), backend: b.backend, device: b.device })),
        ...untrained.map((u) => ({
          dataset: u.dataset, kind: 'untrained', method: u.method, model: u.modelName, layer: u.layer, noiseLevel: u.noiseLevel,
          accuracy: u.accuracy, featureDim: u.featureDim, protocolKey: u.protocolKey, labels: labelBudgetOf(u.labels), backend: u.backend, device: u.device,
        })),
      ],
    });
  }
}
