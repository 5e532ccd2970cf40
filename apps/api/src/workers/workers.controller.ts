import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { ApiEnv } from '@ddae/config';
import { WorkerRepository } from '@ddae/db';
import { API_ENV } from '../core/tokens';

@ApiTags('workers')
@Controller('workers')
export class WorkersController {
  constructor(
    private readonly workers: WorkerRepository,
    @Inject(API_ENV) private readonly env: ApiEnv,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Workers that sent a heartbeat recently' })
  async list() {
    return { workers: await this.workers.live(this.env.WORKER_STALE_MS) };
  }
}
