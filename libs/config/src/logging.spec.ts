import { Writable } from 'node:stream';
import { addLogContext, createServiceLogger, PinoNestLogger, redactText, withLogContext } from './logging';

/** A JSON logger writing into an array of parsed lines. */
function capture(level: 'log' | 'debug' = 'log') {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createServiceLogger({ level, base: { service: 'worker', worker: 'w-1' }, destination });
  return { logger, nest: new PinoNestLogger(logger), lines };
}

const SECRETS = ['s3cr3t-pg', 'r3dis-pw', 'ddae_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'eyJhbGciOi.token.value'];

describe('redaction', () => {
  it('hides URL passwords, bearer tokens and API tokens in text, keeping the rest readable', () => {
    expect(redactText('DATABASE_URL=postgres://ddae:s3cr3t-pg@db:5432/ddae failed')).toBe('DATABASE_URL=postgres://ddae:***@db:5432/ddae failed');
    expect(redactText('connect to rediss://:r3dis-pw@cache:6380/0')).toBe('connect to rediss://:***@cache:6380/0');
    expect(redactText('Authorization: Bearer eyJhbGciOi.token.value, then')).toBe('Authorization: Bearer [redacted], then');
    expect(redactText('token ddae_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA created')).toBe('token ddae_[redacted] created');
    expect(redactText('postgres://127.0.0.1:5432/ddae and ddae_short')).toBe('postgres://127.0.0.1:5432/ddae and ddae_short');
  });

  it('no secret reaches a JSON line, in a message, a stack, or a field', () => {
    const { logger, nest, lines } = capture();
    nest.log('connecting to postgres://ddae:s3cr3t-pg@db:5432/ddae', 'Db');
    nest.error('failed with Bearer eyJhbGciOi.token.value', 'Error: at redis://:r3dis-pw@cache:6379\n    at x', 'Queue');
    logger.info({ req: { method: 'GET', url: '/api/sweeps', headers: { authorization: 'Bearer eyJhbGciOi.token.value', host: 'api' } } }, 'request');
    logger.info({ env: { DATABASE_URL: 'postgres://ddae:s3cr3t-pg@db/ddae', REDIS_URL: 'redis://:r3dis-pw@r' }, token: 'ddae_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, 'config');
    const text = JSON.stringify(lines);
    for (const secret of SECRETS) expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({ level: 'info', service: 'worker', worker: 'w-1', context: 'Db', msg: 'connecting to postgres://ddae:***@db:5432/ddae' });
    expect(lines[1]).toMatchObject({ level: 'error', context: 'Queue', msg: 'failed with Bearer [redacted]', stack: 'Error: at redis://:***@cache:6379\n    at x' });
    expect(lines[2]).toMatchObject({ req: { headers: { authorization: '[redacted]', host: 'api' } } });
    expect(lines[3]).toMatchObject({ env: { DATABASE_URL: '[redacted]', REDIS_URL: '[redacted]' }, token: '[redacted]' });
    expect(typeof lines[0]['time']).toBe('string');
  });

  it("carries the job's ids on every line written within its context, and only there", async () => {
    const { nest, lines } = capture();
    await withLogContext({ jobId: 'pretrain:r1', jobKind: 'pretrain' }, async () => {
      await Promise.resolve();
      addLogContext({ sweepId: 's1', runId: 'r1' });
      nest.log('claimed', 'Jobs');
    });
    nest.log('idle', 'Worker');
    expect(lines[0]).toMatchObject({ worker: 'w-1', jobId: 'pretrain:r1', jobKind: 'pretrain', sweepId: 's1', runId: 'r1', msg: 'claimed' });
    expect(lines[1]).not.toHaveProperty('jobId');
  });

  it('writes nothing below LOG_LEVEL', () => {
    const { nest, lines } = capture('log');
    nest.debug('details', 'Jobs');
    nest.verbose('more', 'Jobs');
    nest.warn('careful', 'Jobs');
    expect(lines.map((l) => l['level'])).toEqual(['warn']);
  });
});
