import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fidInline, fidOptionsFromArgs } from './fid.command';

describe('ddae fid options', () => {
  it('defaults to 2,000 samples, the method\'s sampler steps, seed 0 and KID on 20 subsets of 500', () => {
    expect(fidOptionsFromArgs({ checkpoint: 'tmp/x' })).toEqual({ checkpoint: 'tmp/x', samples: 2000, steps: undefined, seed: 0, batch: 64, kidSubsets: 20, kidSubsetSize: 500 });
    expect(fidOptionsFromArgs({ checkpoint: 'tmp/x', samples: '64', steps: '4', 'kid-subsets': '3' })).toMatchObject({ samples: 64, steps: 4, kidSubsets: 3 });
  });

  it('names the fix for a missing checkpoint, a bad number or an empty directory', async () => {
    expect(() => fidOptionsFromArgs({})).toThrow(/fid needs --checkpoint <dir>.*npm run ddae -- fid --checkpoint/);
    expect(() => fidOptionsFromArgs({ checkpoint: 'x', samples: '1' })).toThrow('--samples must be an integer in [2, 20000], got "1" (e.g. --samples 2000)');
    expect(() => fidOptionsFromArgs({ checkpoint: 'x', steps: '1' })).toThrow(/--steps must be an integer in \[2, 1000\]/);
    const log = (): void => undefined;
    await expect(fidInline({ checkpoint: '/nonexistent/ddae-fid' }, { json: true, log })).rejects.toThrow(/does not exist: pass the --out directory of a pretrain run/);
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-fid-cli-'));
    try {
      await expect(fidInline({ checkpoint: empty }, { json: true, log })).rejects.toThrow(/holds no valid checkpoint/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
