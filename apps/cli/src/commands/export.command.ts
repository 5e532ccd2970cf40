import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ApiClient } from '../api-client';
import { CliError, UsageError } from '../api-client';

const FORMATS = ['csv', 'jsonl'] as const;

/**
 * `ddae export <id> [--format csv|jsonl] [--out FILE]`: every result of a sweep with its
 * hyper-parameters, streamed from the API to stdout, or to FILE through a temporary file beside it
 * that is renamed once complete (an interrupted export leaves no partial FILE). Resolves with
 * undefined: the output is written here, not printed by the caller.
 */
export async function exportResults(api: ApiClient, id: string, opts: { format?: string; out?: string }): Promise<string | undefined> {
  const format = (opts.format ?? 'csv') as (typeof FORMATS)[number];
  if (!FORMATS.includes(format)) throw new UsageError(`--format must be csv or jsonl, got "${opts.format}"`);
  const response = await api.results(id, format);
  if (!response.body) throw new CliError('the API sent no body');
  if (opts.out === undefined || opts.out === '-') {
    for await (const chunk of response.body) {
      if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
    }
    return undefined;
  }
  const out = path.resolve(opts.out);
  await mkdir(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const file = createWriteStream(tmp);
  let bytes = 0;
  try {
    for await (const chunk of response.body) {
      bytes += chunk.length;
      if (!file.write(chunk)) await once(file, 'drain');
    }
    file.end();
    await once(file, 'close');
    await rename(tmp, out);
  } catch (error) {
    file.destroy();
    await rm(tmp, { force: true });
    throw new CliError(`export of sweep ${id} failed, ${opts.out} not written: ${(error as Error).message}`);
  }
  process.stderr.write(`wrote ${opts.out} (${bytes} bytes, ${format})\n`);
  return undefined;
}
