import { once } from 'node:events';
import { Controller, Get, Logger, Param, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ResultsRepository, SweepRepository } from '@ddae/db';
import { ApiError } from '../core/api-error';
import { csvHeader, csvRow, jsonlRow } from './results-format';
import { SweepIdResolver } from './sweep-id';

/**
 * Every probe result of a sweep with the hyper-parameters behind it, the untrained network's cells
 * included, streamed from Postgres batch by batch (a keyset cursor): memory holds one batch of rows
 * whatever the sweep's size, and a slow reader holds no transaction open.
 */
@Controller('sweeps')
export class SweepResultsController {
  private readonly logger = new Logger('Export');

  constructor(
    private readonly ids: SweepIdResolver,
    private readonly sweeps: SweepRepository,
    private readonly results: ResultsRepository,
  ) {}

  @Get(':id/results.csv')
  async csv(@Param('id') id: string, @Req() req: Request, @Res() res: Response) {
    await this.stream(id, 'csv', req, res);
  }

  @Get(':id/results.jsonl')
  async jsonl(@Param('id') id: string, @Req() req: Request, @Res() res: Response) {
    await this.stream(id, 'jsonl', req, res);
  }

  private async stream(raw: string, format: 'csv' | 'jsonl', req: Request, res: Response): Promise<void> {
    const sweepId = await this.ids.resolve(raw);
    if (!(await this.sweeps.findById(sweepId))) throw new ApiError('not_found', `no sweep ${sweepId}`);
    res.status(200).set({
      'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'content-disposition': `attachment; filename="sweep-${sweepId.slice(0, 8)}-results.${format}"`,
      'cache-control': 'no-cache',
    });
    let closed = false;
    req.on('close', () => (closed = true));
    const write = async (chunk: string) => {
      // Backpressure: wait for the socket to drain rather than buffer the sweep in memory.
      if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(req, 'close')]);
    };
    try {
      if (format === 'csv') await write(csvHeader());
      for await (const batch of this.results.batches(sweepId)) {
        if (closed) break;
        await write(batch.map(format === 'csv' ? csvRow : jsonlRow).join(''));
      }
      res.end();
    } catch (error) {
      // The status line is gone: cut the chunked body short, so the client sees an incomplete
      // transfer instead of a file that looks whole.
      this.logger.error(`export of sweep ${sweepId} failed: ${error instanceof Error ? error.message : String(error)}`);
      res.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
