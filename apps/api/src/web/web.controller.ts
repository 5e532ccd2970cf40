import { Controller, Get, Header, Res, type OnModuleInit } from '@nestjs/common';
import type { Response } from 'express';
import { loadWebPage, type WebPage } from './page';
import { RequireScope } from '../core/auth.guard';

/** `GET /`: the leaderboard, sweeps and heatmaps as one page reading the REST API (outside /api). */
@RequireScope('public')
@Controller()
export class WebController implements OnModuleInit {
  private page: WebPage | undefined;
  /** Started with the controller, so bundling the client (about a second) overlaps the rest of the boot. */
  private readonly loading: Promise<WebPage> = loadWebPage();

  constructor() {
    // Awaited (and thrown) in onModuleInit; this only keeps an early failure from being "unhandled".
    this.loading.catch(() => undefined);
  }

  /** Built before the API listens: a page that cannot be built stops the boot. */
  async onModuleInit(): Promise<void> {
    this.page = await this.loading;
  }

  @Get()
  @Header('Cache-Control', 'no-cache')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Referrer-Policy', 'no-referrer')
  index(@Res({ passthrough: true }) res: Response): string {
    if (!this.page) throw new Error('the web page is served once the API module is initialised');
    res.type('html').setHeader('Content-Security-Policy', this.page.csp);
    return this.page.html;
  }
}
