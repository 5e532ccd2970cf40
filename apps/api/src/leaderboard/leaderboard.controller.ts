import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { DATASET_NAMES, METHODS } from '@ddae/contracts';
import { BaselineRepository, LeaderboardRepository } from '@ddae/db';
import { parseOr400 } from '../core/zod-query';

const leaderboardQuery = z.object({
  dataset: z.enum(DATASET_NAMES).optional(),
  method: z.enum(METHODS).optional(),
  sweep: z.uuid({ message: 'must be a sweep id (a UUID)' }).optional(),
  per: z.enum(['cell', 'run', 'config']).default('cell'),
  limit: z.coerce.number().int().min(1).max(500).default(20),
});

@ApiTags('leaderboard')
@Controller('leaderboard')
export class LeaderboardController {
  constructor(
    private readonly leaderboard: LeaderboardRepository,
    private readonly baselines: BaselineRepository,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Best probe results, by accuracy, with the baselines of the same data sets' })
  @ApiQuery({ name: 'dataset', required: false, enum: DATASET_NAMES })
  @ApiQuery({ name: 'method', required: false, enum: METHODS })
  @ApiQuery({ name: 'sweep', required: false, description: 'sweep id' })
  @ApiQuery({ name: 'per', required: false, enum: ['cell', 'run', 'config'], description: 'cell: every result; run: each run\'s best cell; config: mean and spread over seeds per (model, layer, noise, protocol)' })
  @ApiQuery({ name: 'limit', required: false, description: '1..500, default 20' })
  async get(@Query() query: unknown) {
    const q = parseOr400(leaderboardQuery, query, 'query');
    const filter = { dataset: q.dataset, method: q.method, sweepId: q.sweep, per: q.per, limit: q.limit };
    const rows = q.per === 'config' ? await this.leaderboard.topByConfig(filter) : await this.leaderboard.top(filter);
    const datasets = q.dataset ? [q.dataset] : [...new Set(rows.map((r) => r.dataset))];
    const [pixels, untrained] = await Promise.all([
      datasets.length ? this.baselines.forDatasets(datasets) : [],
      this.leaderboard.untrainedBest(datasets, q.sweep),
    ]);
    return {
      filter: q,
      rows: rows.map((r, i) => ({ rank: i + 1, ...r })),
      baselines: [
        ...pixels.map((b) => ({ dataset: b.dataset, kind: b.kind, accuracy: b.accuracy, featureDim: b.featureDim, protocolKey: b.protocolKey, backend: b.backend })),
        ...untrained.map((u) => ({
          dataset: u.dataset, kind: 'untrained', method: u.method, model: u.modelName, layer: u.layer, noiseLevel: u.noiseLevel,
          accuracy: u.accuracy, featureDim: u.featureDim, protocolKey: u.protocolKey, backend: u.backend,
        })),
      ],
    };
  }
}
