import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { RequireScope } from '../core/auth.guard';
import { ApiMetrics } from '../core/metrics';

/** `GET /metrics`: Prometheus' text format (outside /api, public like /health: scrapers carry no token). */
@RequireScope('public')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: ApiMetrics) {}

  @Get()
  async scrape(@Res({ passthrough: true }) res: Response): Promise<string> {
    res.setHeader('Content-Type', this.metrics.registry.contentType);
    return this.metrics.registry.metrics();
  }
}
