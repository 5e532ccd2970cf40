import { Controller, Get, Inject } from '@nestjs/common';
import type { ApiEnv } from '@ddae/config';
import { workerListSchema } from '@ddae/contracts';
import { WorkerRepository } from '@ddae/db';
import { reply } from '../core/reply';
import { API_ENV } from '../core/tokens';

@Controller('workers')
export class WorkersController {
  constructor(
    private readonly workers: WorkerRepository,
    @Inject(API_ENV) private readonly env: ApiEnv,
  ) {}

  @Get()
  async list() {
    return reply(workerListSchema, { workers: await this.workers.live(this.env.WORKER_STALE_MS) });
  }
}
