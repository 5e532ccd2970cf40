import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GpuAdapter } from '@ddae/contracts';
import { GpuInUseError, gpuLockKey, lockGpu } from './gpu-lock';

const limits = { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31, maxStorageBuffersPerShaderStage: 8, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 1024 };
const h200 = (index: number, pci?: string): GpuAdapter => ({ index, name: 'NVIDIA H200', api: 'vulkan', vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA 580', fallback: false, limits, ...(pci ? { pci } : {}) });

/**
 * A real second worker process that takes the lock for `gpu` with lockGpu and holds it until killed.
 * Resolves once it holds the lock; rejects with its output if it could not take it.
 */
async function holdInChild(gpu: GpuAdapter, workerId: string, dir: string): Promise<ChildProcess> {
  const code = `const { lockGpu } = require(${JSON.stringify(require.resolve('./gpu-lock'))});
    lockGpu(${JSON.stringify(gpu)}, ${JSON.stringify(workerId)}, ${JSON.stringify(dir)});
    process.stdout.write('locked\\n');
    setTimeout(() => {}, 60000);`;
  const child = spawn(process.execPath, ['-r', require.resolve('@swc-node/register'), '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const seen = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('locked\n')) resolve();
    };
    child.stdout?.on('data', seen);
    child.stderr?.on('data', seen);
    child.once('exit', (code) => reject(new Error(`the child holding ${workerId} exited (${code}) before taking its lock: ${output}`)));
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

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

  describe('a GPU named by PCI address and one named by its place in Dawn list are never mixed on a host', () => {
    const forms: [string, GpuAdapter, GpuAdapter][] = [
      ['held by PCI address, wanted by index', h200(0, 'pci-0000_3b_00_0'), h200(0)],
      ['held by index, wanted by PCI address', h200(0), h200(0, 'pci-0000_3b_00_0')],
    ];
    it.each(forms)('%s, the holder alive: refuses to start, naming the holder and the fix', async (_, held, mine) => {
      const holder = await holdInChild(held, 'w-a', dir);
      try {
        let error: unknown;
        try {
          lockGpu(mine, 'w-b', dir);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(GpuInUseError);
        expect((error as Error).message).toContain(`worker w-a (pid ${holder.pid})`);
        expect((error as Error).message).toMatch(/Name every GPU on a host the same way: DDAE_GPU=pci-<address> on every worker/);
        // It let go of its own lock: only the holder's remains.
        expect(fs.readdirSync(dir)).toEqual([`ddae-gpu-${gpuLockKey(held)}.lock`]);
        // The same form as the holder, on another GPU, is fine.
        const same = lockGpu(held.pci ? h200(1, 'pci-0000_5d_00_0') : h200(1), 'w-c', dir);
        expect(same).toBeDefined();
        same?.release();
      } finally {
        await kill(holder);
      }
    });

    it.each(forms)('%s, the holder dead: starts', async (_, held, mine) => {
      const holder = await holdInChild(held, 'w-a', dir);
      await kill(holder);
      // Killed: its lock file stays behind, naming a dead process.
      expect(fs.readdirSync(dir)).toEqual([`ddae-gpu-${gpuLockKey(held)}.lock`]);
      const lock = lockGpu(mine, 'w-b', dir);
      expect(lock).toBeDefined();
      lock?.release();
    });
  });
});
