import { Controller, Get, HttpException, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { PrismaClient } from '@ddae/db';
import type { ComputeQueue } from '@ddae/queue';
import { withTimeout } from '@ddae/queue';
import { COMPUTE_QUEUE, PRISMA } from '../core/tokens';
import { RequireScope } from '../core/auth.guard';

@ApiTags('health')
@RequireScope('public')
@Controller('health')
export class HealthController {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(COMPUTE_QUEUE) private readonly queue: ComputeQueue,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Liveness and dependencies: 200 when Postgres and Redis answer, else 503' })
  async check() {
    const [db, redis] = await Promise.all([
      withTimeout(this.prisma.$queryRaw`SELECT 1`, 2_000, 'postgres').then(() => 'up' as const, () => 'down' as const),
      withTimeout(this.queue.ping(), 2_000, 'redis').then(() => 'up' as const, () => 'down' as const),
    ]);
    const body = { status: db === 'up' && redis === 'up' ? 'ok' : 'degraded', postgres: db, redis };
    if (body.status !== 'ok') throw new HttpException(body, 503);
    return body;
  }
}
