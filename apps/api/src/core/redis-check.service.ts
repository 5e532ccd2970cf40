import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { ApiEnv } from '@ddae/config';
import { checkRedisDurability } from '@ddae/queue';
import { API_ENV } from './tokens';

/**
 * Warns at start when Redis's configuration can lose jobs (an evicting maxmemory-policy, no
 * persistence), or when it cannot be read. In the background: the API starts whatever Redis says,
 * and a Redis that is down is /health's business.
 */
@Injectable()
export class RedisConfigCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger('Redis');

  constructor(@Inject(API_ENV) private readonly env: ApiEnv) {}

  onApplicationBootstrap(): void {
    void this.check();
  }

  async check(): Promise<string[]> {
    try {
      const warnings = await checkRedisDurability(this.env.REDIS_URL);
      for (const warning of warnings) this.logger.warn(warning);
      return warnings;
    } catch (error) {
      this.logger.warn(`could not check Redis's configuration: ${(error as Error).message}`);
      return [];
    }
  }
}
