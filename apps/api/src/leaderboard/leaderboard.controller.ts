import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { DATASET_NAMES, METHODS } from '@ddae/contracts';
import { BaselineRepository, InvalidCursorError, LeaderboardRepository } from '@ddae/db';
import { ApiError } from '../core/api-error';
import { parseOr400 } from '../core/zod-query';
import { SweepIdResolver } from '../sweeps/sweep-id';

const leaderboardQuery = z.object({
  dataset: z.enum(DATASET_NAMES).optional(),
  method: z.enum(METHODS).optional(),
  sweep: z.string().optional(),
  per: z.enum(['cell', 'run', 'config']).default('cell'),
  limit: z.coerce.number().int().min(1).max(500).default(20),
  cursor: z.string().min(1).max(2000).optional(),
});

@ApiTags('leaderboard')
@Controller('leaderboard')
export class LeaderboardController {
  constructor(
    private readonly leaderboard: LeaderboardRepository,
    private readonly baselines: BaselineRepository,
    private readonly ids: SweepIdResolver,
  ) {}

  @Get()
  @ApiOperation({
    summary:
      'Best probe results, by accuracy, with the baselines of the same data sets. Paged: `nextCursor` (null on the last page) continues the ranking with the same filter.',
  })
  @ApiQuery({ name: 'dataset', required: false, enum: DATASET_NAMES })
  @ApiQuery({ name: 'method', required: false, enum: METHODS })
  @ApiQuery({ name: 'sweep', required: false, description: 'sweep id, or a unique prefix of at least 8 hex digits' })
  @ApiQuery({ name: 'per', required: false, enum: ['cell', 'run', 'config'], description: 'cell: every result; run: each run\'s best cell; config: mean and spread over seeds per (model, layer, noise, protocol)' })
  @ApiQuery({ name: 'limit', required: false, description: 'rows per page, 1..500, default 20' })
  @ApiQuery({ name: 'cursor', required: false, description: 'the nextCursor of the previous page (same filter)' })
  async get(@Query() query: unknown) {
    const q = parseOr400(leaderboardQuery, query, 'query');
    const sweepId = q.sweep === undefined ? undefined : await this.ids.resolve(q.sweep, 'query.sweep');
    const filter = { dataset: q.dataset, method: q.method, sweepId, per: q.per, limit: q.limit, cursor: q.cursor };
    let page: Awaited<ReturnType<LeaderboardRepository['page']>>;
    try {
      page = await this.leaderboard.page(filter);
    } catch (error) {
      if (error instanceof InvalidCursorError) throw new ApiError('invalid_request', 'invalid query', [{ path: 'query.cursor', message: error.message }]);
      throw error;
    }
    const rows: { dataset: string }[] = page.rows;
    const datasets = q.dataset ? [q.dataset] : [...new Set(rows.map((r) => r.dataset))];
    const [pixels, untrained] = await Promise.all([datasets.length ? this.baselines.forDatasets(datasets) : [], this.leaderboard.untrainedBest(datasets, sweepId)]);
    return {
      filter: { ...q, sweep: sweepId },
      rows: page.rows,
      nextCursor: page.nextCursor,
      // Beside the ranking, never in it: the raw-pixel baselines, and the untrained network's best cell (named).
      baselines: [
        ...pixels.map((b) => ({ dataset: b.dataset, kind: b.kind, accuracy: b.accuracy, featureDim: b.featureDim, protocolKey: b.protocolKey, backend: b.backend, device: b.device })),
        ...untrained.map((u) => ({
          dataset: u.dataset, kind: 'untrained', method: u.method, model: u.modelName, layer: u.layer, noiseLevel: u.noiseLevel,
          accuracy: u.accuracy, featureDim: u.featureDim, protocolKey: u.protocolKey, backend: u.backend, device: u.device,
        })),
      ],
    };
  }
}
