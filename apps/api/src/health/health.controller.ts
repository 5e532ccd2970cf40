import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { HEALTH_DEPENDENCY_TIMEOUT_MS, healthDownSchema, healthSchema } from '@ddae/contracts';
import type { PrismaClient } from '@ddae/db';
import type { ComputeQueue } from '@ddae/queue';
import { withTimeout } from '@ddae/queue';
import { COMPUTE_QUEUE, PRISMA } from '../core/tokens';
import { RequireScope } from '../core/auth.guard';
import { reply } from '../core/reply';

@RequireScope('public')
@Controller('health')
export class HealthController {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(COMPUTE_QUEUE) private readonly queue: ComputeQueue,
  ) {}

  @Get()
  async check(@Res({ passthrough: true }) res: Response) {
    const [db, redis] = await Promise.all([
      withTimeout(this.prisma.$queryRaw`SELECT 1`, HEALTH_DEPENDENCY_TIMEOUT_MS, 'postgres').then(() => 'up' as const, () => 'down' as const),
      withTimeout(this.queue.ping(), HEALTH_DEPENDENCY_TIMEOUT_MS, 'redis').then(() => 'up' as const, () => 'down' as const),
    ]);
    const down = [...(db === 'down' ? ['postgres'] : []), ...(redis === 'down' ? ['redis'] : [])];
    if (down.length === 0) return reply(healthSchema, { status: 'ok', postgres: db, redis });
    // The error shape of every other 4xx/5xx, with each dependency's state beside it.
    res.status(503);
    return reply(healthDownSchema, { statusCode: 503, error: 'service_unavailable', message: `${down.join(' and ')} ${down.length > 1 ? 'are' : 'is'} down`, status: 'degraded', postgres: db, redis });
  }
}
