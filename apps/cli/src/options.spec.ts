import { UsageError } from './api-client';
import { COMMAND_OPTIONS, parseCommandLine } from './options';

describe('each command parses its own options', () => {
  it('refuses an option of another command, naming the command and its options', () => {
    expect(() => parseCommandLine(['sweep', 'list', '--steps', '9'])).toThrow(UsageError);
    expect(() => parseCommandLine(['sweep', 'list', '--steps', '9'])).toThrow('sweep list does not take --steps: its options are --status, --limit');
    expect(() => parseCommandLine(['sweep', 'status', 'abc', '--wait'])).toThrow('sweep status does not take --wait: its options are none');
    expect(() => parseCommandLine(['leaderboard', '--unet', 'tiny', '--lr=0.1'])).toThrow('leaderboard does not take --unet, --lr');
  });

  it('takes a command\'s own options and the global ones, anywhere on the line', () => {
    const { values, positionals } = parseCommandLine(['--api', 'http://h:1', 'sweep', 'list', '--status', 'failed', '--json']);
    expect(positionals).toEqual(['sweep', 'list']);
    expect(values).toMatchObject({ api: 'http://h:1', status: 'failed', json: true });
    expect(parseCommandLine(['pretrain', '--steps', '9', '--ema-cap', '0.99']).values).toMatchObject({ steps: '9', 'ema-cap': '0.99' });
  });

  it('leaves an unknown command and an unknown option to the usual errors', () => {
    expect(parseCommandLine(['frobnicate']).positionals).toEqual(['frobnicate']);
    expect(() => parseCommandLine(['leaderboard', '--nope'])).toThrow(expect.objectContaining({ code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }));
  });

  it('lists every command the help documents', () => {
    expect(Object.keys(COMMAND_OPTIONS)).toEqual(expect.arrayContaining(['sweep submit', 'leaderboard', 'pretrain', 'sample', 'probe', 'noise-search', 'cache', 'export', 'heatmap', 'token']));
  });
});
