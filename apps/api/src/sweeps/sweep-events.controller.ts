import { Controller, Get, Headers, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { EventRepository, SweepRepository } from '@ddae/db';
import { ApiError } from '../core/api-error';
import { parseOr400 } from '../core/zod-query';
import { SweepIdResolver } from './sweep-id';

const cursor = z.string().regex(/^\d{1,18}$/, 'an event id (digits)');
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
/** How often a live stream looks for new events in Postgres. */
const POLL_MS = 1_000;
/** A comment line keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

@Controller('sweeps')
export class SweepEventsController {
  constructor(
    private readonly sweeps: SweepRepository,
    private readonly events: EventRepository,
    private readonly ids: SweepIdResolver,
  ) {}

  /**
   * Server-Sent Events of one sweep, from Postgres: everything after Last-Event-ID (or ?after=),
   * then new events as they are written; the stream ends once the sweep is finished and sent.
   */
  @Get(':id/events')
  async stream(@Param('id') id: string, @Headers('last-event-id') lastEventId: string | undefined, @Query('after') after: string | undefined, @Req() req: Request, @Res() res: Response) {
    const sweepId = await this.ids.resolve(id);
    const from = parseOr400(cursor.optional(), lastEventId ?? after, lastEventId !== undefined ? 'header.Last-Event-ID' : 'query.after');
    if (!(await this.sweeps.findById(sweepId))) throw new ApiError('not_found', `no sweep ${sweepId}`);

    res.status(200).set({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    let closed = false;
    req.on('close', () => (closed = true));
    let last = BigInt(from ?? 0);
    let lastWrite = Date.now();
    try {
      while (!closed) {
        // Read the status before the events: a sweep seen finished has written its last event.
        const finished = TERMINAL.has((await this.sweeps.findById(sweepId))?.status ?? 'CANCELLED');
        const batch = await this.events.after(sweepId, last);
        for (const e of batch) {
          res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify({ ...(e.data as object), at: e.createdAt })}\n\n`);
          last = e.id;
        }
        if (batch.length > 0) lastWrite = Date.now();
        if (batch.length === 500) continue;
        if (finished) break;
        if (Date.now() - lastWrite > KEEPALIVE_MS) {
          res.write(': keep-alive\n\n');
          lastWrite = Date.now();
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } finally {
      res.end();
    }
  }
}
