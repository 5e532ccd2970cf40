import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import { SweepRepository } from '@ddae/db';
import { ApiError } from '../core/api-error';
import { parseOr400 } from '../core/zod-query';

const FULL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** What the page and the CLI's tables show: the first 8 (or more) hex digits of the id. */
const sweepIdOrPrefix = z
  .string()
  .trim()
  .refine((s) => FULL.test(s) || /^[0-9a-f-]+$/i.test(s), { message: 'must be a sweep id (a UUID) or a unique prefix of it (at least 8 hex digits)' })
  .refine((s) => FULL.test(s) || (s.replace(/-/g, '').length >= 8 && s.replace(/-/g, '').length <= 32), {
    message: 'a short sweep id needs at least 8 hex digits (as the tables show), or give the whole UUID',
  });

/**
 * Resolves the sweep ids people type: a whole UUID, or a unique prefix of at least 8 hex digits
 * (the short ids of the web page and the CLI's tables). An unknown id is a 404; a prefix that more
 * than one sweep shares is a 409 that lists the candidates.
 */
@Injectable()
export class SweepIdResolver {
  constructor(private readonly sweeps: SweepRepository) {}

  async resolve(raw: unknown, where = 'path.id'): Promise<string> {
    const id = parseOr400(sweepIdOrPrefix, raw, where);
    if (FULL.test(id)) return id.toLowerCase();
    const found = await this.sweeps.findByIdPrefix(id, 10);
    if (found.length === 1) return found[0].id;
    if (found.length === 0) throw new ApiError('not_found', `no sweep id starts with "${id}"`);
    const list = found.map((s) => `${s.id} (${s.name}, ${s.status.toLowerCase()})`).join(', ');
    throw new ApiError('conflict', `"${id}" is the start of ${found.length === 10 ? '10 or more' : found.length} sweep ids: ${list}; give more of the id`, undefined, {
      candidates: found.map((s) => ({ id: s.id, name: s.name, status: s.status, dataset: s.dataset, createdAt: s.createdAt })),
    });
  }
}
