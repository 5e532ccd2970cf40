import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GpuAdapter } from '@ddae/contracts';
import { GpuInUseError, gpuLockKey, lockGpu } from './gpu-lock';

const limits = { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31, maxStorageBuffersPerShaderStage: 8, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 1024 };
const h200 = (index: number, pci?: string): GpuAdapter => ({ index, name: 'NVIDIA H200', api: 'vulkan', vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA 580', fallback: false, limits, ...(pci ? { pci } : {}) });

describe('one worker per GPU on a host', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-gpu-lock-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keys a GPU by its PCI address, else by its place and name in Dawn list', () => {
    expect(gpuLockKey(h200(1))).toBe('1-nvidia-h200');
    expect(gpuLockKey(h200(0, 'pci-0000_3b_00_0'))).toBe('pci-0000-3b-00-0');
  });

  it('refuses a second worker on a GPU a live worker holds, naming it; another GPU is fine', async () => {
    // A live process of its own holds GPU 0 (the lock names it).
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      fs.writeFileSync(path.join(dir, `ddae-gpu-${gpuLockKey(h200(0))}.lock`), JSON.stringify({ pid: holder.pid, workerId: 'w-a', gpu: '0 "NVIDIA H200"' }));
      expect(() => lockGpu(h200(0), 'w-b', dir)).toThrow(GpuInUseError);
      expect(() => lockGpu(h200(0), 'w-b', dir)).toThrow(/already used by worker w-a \(pid \d+\).*DDAE_GPU/);
      const other = lockGpu(h200(1), 'w-b', dir);
      expect(other).toBeDefined();
      other?.release();
      expect(fs.existsSync(other?.file ?? '')).toBe(false);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('takes over the lock of a worker that died, and never locks a software adapter', async () => {
    const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => dead.once('exit', r));
    const file = path.join(dir, `ddae-gpu-${gpuLockKey(h200(0))}.lock`);
    fs.writeFileSync(file, JSON.stringify({ pid: dead.pid, workerId: 'w-dead', gpu: '0' }));
    const lock = lockGpu(h200(0), 'w-new', dir);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid, workerId: 'w-new' });
    lock?.release();
    expect(lockGpu({ ...h200(0), fallback: true }, 'w-x', dir)).toBeUndefined();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
