import { allowedHosts, hostName } from './http-policy';

describe('hostName', () => {
  it('drops the port and IPv6 brackets and lowercases', () => {
    expect(hostName('LocalHost:3000')).toBe('localhost');
    expect(hostName('127.0.0.1')).toBe('127.0.0.1');
    expect(hostName('[::1]:3000')).toBe('::1');
    expect(hostName('[::1]')).toBe('::1');
    expect(hostName('::1')).toBe('::1');
    expect(hostName(undefined)).toBeUndefined();
    expect(hostName('')).toBeUndefined();
  });
});

describe('allowedHosts', () => {
  it('defaults to the loopback names, plus HOST when it is a specific address', () => {
    expect(allowedHosts({ HOST: '127.0.0.1' })).toEqual(new Set(['localhost', '127.0.0.1', '::1']));
    expect(allowedHosts({ HOST: '0.0.0.0' })).toEqual(new Set(['localhost', '127.0.0.1', '::1']));
    expect(allowedHosts({ HOST: '10.0.0.5' })).toEqual(new Set(['localhost', '127.0.0.1', '::1', '10.0.0.5']));
    expect(allowedHosts({ HOST: '127.0.0.1', ALLOWED_HOSTS: [] })).toEqual(new Set(['localhost', '127.0.0.1', '::1']));
  });

  it('takes ALLOWED_HOSTS instead when given, * for any', () => {
    expect(allowedHosts({ HOST: '10.0.0.5', ALLOWED_HOSTS: ['API.lab.example'] })).toEqual(new Set(['api.lab.example']));
    expect(allowedHosts({ HOST: '127.0.0.1', ALLOWED_HOSTS: ['*'] })).toBe('*');
  });
});
