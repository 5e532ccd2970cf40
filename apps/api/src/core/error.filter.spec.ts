import { HttpException, Logger } from '@nestjs/common';
import { ApiError } from './api-error';
import { toErrorBody } from './error.filter';

describe('toErrorBody', () => {
  const logger = new Logger('test');
  beforeAll(() => Logger.overrideLogger(false));

  it('keeps a domain error\'s code, status and issues', () => {
    const body = toErrorBody(new ApiError('invalid_spec', 'bad', [{ path: 'pretrain.steps', message: 'too small' }]), logger);
    expect(body).toEqual({ statusCode: 400, error: 'invalid_spec', message: 'bad', issues: [{ path: 'pretrain.steps', message: 'too small' }] });
  });

  it('maps body-parser errors to their 4xx', () => {
    expect(toErrorBody(Object.assign(new Error('request entity too large'), { status: 413, type: 'entity.too.large' }), logger).statusCode).toBe(413);
    expect(toErrorBody(Object.assign(new Error('Unexpected end'), { status: 400, type: 'entity.parse.failed' }), logger).message).toMatch(/^malformed body/);
  });

  it('keeps HttpException statuses', () => {
    expect(toErrorBody(new HttpException({ status: 'degraded' }, 503), logger).statusCode).toBe(503);
  });

  it('hides internals of unknown errors behind an error id', () => {
    const body = toErrorBody(new Error('password=hunter2 at /srv/secret.ts:12'), logger);
    expect(body.statusCode).toBe(500);
    expect(JSON.stringify(body)).not.toContain('hunter2');
    expect(body.errorId).toMatch(/^[0-9a-f-]{36}$/);
  });
});
