import { Controller, Get, Header, Res } from '@nestjs/common';
import type { Response } from 'express';
import { loadWebPage, type WebPage } from './page';
import { RequireScope } from '../core/auth.guard';

/** `GET /`: the leaderboard, sweeps and heatmaps as one page reading the REST API (outside /api). */
@RequireScope('public')
@Controller()
export class WebController {
  private readonly page: WebPage = loadWebPage();

  @Get()
  @Header('Cache-Control', 'no-cache')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Referrer-Policy', 'no-referrer')
  index(@Res({ passthrough: true }) res: Response): string {
    res.type('html').setHeader('Content-Security-Policy', this.page.csp);
    return this.page.html;
  }
}
