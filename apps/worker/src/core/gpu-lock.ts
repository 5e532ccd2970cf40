import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GpuAdapter } from '@ddae/contracts';

/** Another live worker on this host holds the GPU: starting would share it by accident. */
export class GpuInUseError extends Error {
  override name = 'GpuInUseError';
}

/** Who holds a GPU lock (the lock file's content). */
interface LockOwner {
  pid: number;
  workerId: string;
  gpu: string;
}

/** The lock's key: the adapter's PCI address when it was chosen by one, else its position and name in Dawn's list. */
export function gpuLockKey(gpu: GpuAdapter): string {
  const id = gpu.pci ?? `${gpu.index}-${gpu.name}`;
  return id.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

/**
 * How a worker named its GPU, read off a lock key: `pci` (DDAE_GPU=pci-0000_3b_00_0) or `dawn`
 * (an index, a name or `auto`: a place in Dawn's list). The two cannot be compared: Dawn's order of
 * adapters need not be the PCI order of Mesa's device-select layer, and Dawn reports no PCI address.
 */
type LockForm = 'pci' | 'dawn';
const formOf = (key: string): LockForm => (key.startsWith('pci-') ? 'pci' : 'dawn');
const LOCK_FILE = /^ddae-gpu-(.+)\.lock$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Holds `<dir>/ddae-gpu-<key>.lock` for this process's lifetime: one worker per GPU on a host.
 * The file is created exclusively (O_EXCL) and names its owner; a lock whose owner has died is
 * taken over, so a killed worker never blocks its GPU. Released on `release()` and at exit.
 * Software adapters are not locked (several workers may share a CPU rasteriser).
 * A GPU named by PCI address and one named by its place in Dawn's list cannot be told apart, so a
 * worker also refuses to start while a live worker on the host holds a lock of the other form.
 * @param dir where the locks live; the host's temporary directory by default (one per host, or
 *   per container: a container sees only the GPUs given to it)
 * @throws GpuInUseError naming the live worker that holds the GPU, or a live worker whose GPU is
 *   named in the other form (and how to name them all the same way)
 */
export function lockGpu(gpu: GpuAdapter, workerId: string, dir = os.tmpdir()): { file: string; release(): void } | undefined {
  if (gpu.fallback) return undefined;
  const key = gpuLockKey(gpu);
  const file = path.join(dir, `ddae-gpu-${key}.lock`);
  const me: LockOwner = { pid: process.pid, workerId, gpu: `${gpu.index} "${gpu.name}"${gpu.pci ? ` ${gpu.pci}` : ''}` };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        process.off('exit', release);
        try {
          const owner = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
          if (owner.pid === process.pid) fs.rmSync(file, { force: true });
        } catch {
          // Already gone.
        }
      };
      process.on('exit', release);
      // Ours is written before we look, so of two workers starting at once with the two forms at
      // least one sees the other: both may stop, never both run.
      const mixed = liveLockOfOtherForm(dir, key);
      if (mixed) {
        release();
        throw new GpuInUseError(
          `GPU ${me.gpu} is named ${describeForm(formOf(key))}, but worker ${mixed.owner.workerId} (pid ${mixed.owner.pid}) on this host holds GPU ${mixed.owner.gpu} named ${describeForm(formOf(mixed.key))} (lock ${mixed.file}): ` +
            'the two forms cannot tell whether they are the same GPU, so both could share one by accident. Name every GPU on a host the same way: ' +
            'DDAE_GPU=pci-<address> on every worker (needed for identical GPUs), or an index or name on every worker',
        );
      }
      return { file, release };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let owner: LockOwner | undefined;
    try {
      owner = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
    } catch {
      // Being written or removed right now: look again.
    }
    if (owner && owner.pid !== process.pid && alive(owner.pid)) {
      throw new GpuInUseError(
        `GPU ${me.gpu} is already used by worker ${owner.workerId} (pid ${owner.pid}) on this host (lock ${file}): give this worker another GPU with DDAE_GPU`,
      );
    }
    // Its owner died: move the stale lock aside and create ours. Moving (not deleting) lets us
    // see whether we moved a lock that a concurrent starter had just created; that one goes back.
    if (owner) takeOverStale(file, owner.pid);
  }
  throw new GpuInUseError(`could not take the lock ${file} for GPU ${me.gpu}: another process keeps changing it`);
}

function describeForm(form: LockForm): string {
  return form === 'pci' ? 'by PCI address (DDAE_GPU=pci-...)' : "by its place or name in Dawn's list (DDAE_GPU=<index>, <name> or auto)";
}

/** A lock of the other naming form whose owner (another process) is alive, if any. */
function liveLockOfOtherForm(dir: string, key: string): { file: string; key: string; owner: LockOwner } | undefined {
  for (const name of fs.readdirSync(dir)) {
    const other = LOCK_FILE.exec(name)?.[1];
    if (!other || formOf(other) === formOf(key)) continue;
    const file = path.join(dir, name);
    let owner: LockOwner;
    try {
      owner = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
    } catch {
      // Being written (then its writer sees ours) or removed right now.
      continue;
    }
    if (owner.pid !== process.pid && alive(owner.pid)) return { file, key: other, owner };
  }
  return undefined;
}

function takeOverStale(file: string, deadPid: number): void {
  const aside = `${file}.stale-${process.pid}`;
  try {
    fs.renameSync(file, aside);
  } catch {
    return;
  }
  try {
    const moved = JSON.parse(fs.readFileSync(aside, 'utf8')) as LockOwner;
    if (moved.pid !== deadPid && alive(moved.pid)) fs.linkSync(aside, file);
  } catch {
    // Unreadable or the name is taken again: the next attempt decides.
  } finally {
    fs.rmSync(aside, { force: true });
  }
}
