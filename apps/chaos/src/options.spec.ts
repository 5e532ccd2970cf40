import { DEFAULTS, parseOptions, UsageError } from './options';

describe('chaos flags', () => {
  it('defaults to a three-worker run with seed 1', () => {
    expect(parseOptions([])).toEqual(DEFAULTS);
    expect(DEFAULTS).toMatchObject({ seed: 1, workers: 3, json: false });
  });

  it('reads every flag, as `--flag value` or `--flag=value`', () => {
    expect(parseOptions(['--json', '--seed', '7', '--workers=4', '--faults', '0', '--runs', '2', '--steps=16', '--timeout', '60', '--verbose'])).toEqual({
      seed: 7,
      workers: 4,
      faults: 0,
      runs: 2,
      steps: 16,
      timeout: 60,
      json: true,
      verbose: true,
    });
    expect(parseOptions(['--help'])).toBe('help');
  });

  it.each([
    [['--sed', '3'], /unknown argument "--sed"/],
    [['--seed'], /--seed needs a value/],
    [['--seed', 'abc'], /--seed must be a whole number, got "abc"/],
    [['--seed', '-1'], /--seed must be a whole number/],
    [['--workers', '1'], /--workers must be between 2 and 8, got 1/],
    [['--steps=4'], /--steps must be between 8 and 2000/],
    [['extra'], /unknown argument "extra"/],
  ])('rejects %j clearly', (argv, message) => {
    expect(() => parseOptions(argv)).toThrow(UsageError);
    expect(() => parseOptions(argv)).toThrow(message);
  });
});
