import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

/**
 * The command of issue 10, exactly as a user types it on a clean clone: the webgpu backend (Dawn
 * on lavapipe here, the software Vulkan scripts/ensure-services.sh installs), real Fashion-MNIST,
 * the tiny UNet, 2 steps of batch 8. It must print "backend":"webgpu" and end on its own (a
 * process holding a Dawn device must drop it to exit).
 */
jest.setTimeout(300_000);

const run = promisify(execFile);
const repo = path.resolve(__dirname, '../../../..');

describe('npm run -s ddae -- pretrain --backend webgpu', () => {
  let out: string;
  beforeAll(() => {
    out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-cli-webgpu-')), 'run');
  });
  afterAll(() => fs.rmSync(path.dirname(out), { recursive: true, force: true }));

  it('trains on webgpu and says so', async () => {
    const { stdout, stderr } = await run('npm', ['run', '-s', 'ddae', '--', 'pretrain', '--backend', 'webgpu', '--dataset', 'fashion-mnist', '--unet', 'tiny', '--steps', '2', '--batch', '8', '--out', out, '--json'], {
      cwd: repo,
      env: { ...process.env, DDAE_BACKEND: '', DDAE_GPU: '' },
      timeout: 280_000,
      maxBuffer: 16 * 2 ** 20,
    });
    expect(stdout).toContain('"backend":"webgpu"');
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as { checkpoint: string; steps: number; backend: string; gpu: { name: string; fallback: boolean } };
    expect(result).toMatchObject({ checkpoint: path.join(out, 'step-00000002'), steps: 2, backend: 'webgpu', gpu: { fallback: true } });
    expect(fs.existsSync(path.join(result.checkpoint, 'manifest.json'))).toBe(true);
    expect(stderr).toMatch(/backend: webgpu \(.*GPU 0 "llvmpipe/);
  });
});
