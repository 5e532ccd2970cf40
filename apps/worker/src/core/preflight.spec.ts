import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { preflightProblems, PreflightError } from './preflight';

describe('worker preflight', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'ddae-preflight-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('passes a writable artifact directory and a data directory holding a data set', async () => {
    await mkdir(path.join(root, 'data', 'fashion-mnist'), { recursive: true });
    expect(await preflightProblems({ ARTIFACT_DIR: path.join(root, 'artifacts'), DDAE_DATA_DIR: path.join(root, 'data') })).toEqual([]);
    expect(await preflightProblems({ ARTIFACT_DIR: path.join(root, 'artifacts') })).toEqual([]);
  });

  it('names a wrong DDAE_DATA_DIR and how to fix it', async () => {
    const [missing] = await preflightProblems({ ARTIFACT_DIR: root, DDAE_DATA_DIR: path.join(root, 'nope') });
    expect(missing).toMatch(/^DDAE_DATA_DIR=.*nope cannot be read \(ENOENT\): set it to a folder holding fashion-mnist\/, mnist\/, cifar10\//);
    await mkdir(path.join(root, 'empty'));
    expect(await preflightProblems({ ARTIFACT_DIR: root, DDAE_DATA_DIR: path.join(root, 'empty') })).toEqual([expect.stringMatching(/holds no data set/)]);
    await writeFile(path.join(root, 'file'), '');
    expect(await preflightProblems({ ARTIFACT_DIR: root, DDAE_DATA_DIR: path.join(root, 'file') })).toEqual([expect.stringMatching(/ENOTDIR/)]);
  });

  it('names an artifact directory it cannot write', async () => {
    // root ignores file modes: a file where the directory should be fails for every user.
    await writeFile(path.join(root, 'ro'), '');
    const problems = await preflightProblems({ ARTIFACT_DIR: path.join(root, 'ro', 'artifacts') });
    expect(problems).toEqual([expect.stringMatching(/^ARTIFACT_DIR=.* is not writable \((ENOTDIR|EEXIST)\): .*make it writable/)]);
    expect(new PreflightError(problems).message).toMatch(/^this worker refuses to start: ARTIFACT_DIR=/);
  });
});
