import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serializeError } from '../compute/child-protocol';
import { environmentFault, type FaultError } from './environment-fault';

const site = { artifactRoot: '/srv/artifacts', datasetDirs: ['/data/fashion-mnist'] };
const fault = (e: Partial<FaultError>) => environmentFault({ name: 'Error', message: 'boom', ...e }, site);

describe('environment faults: the machine, not the job', () => {
  it('a file system error under ARTIFACT_DIR is the machine\'s, whichever write it was', () => {
    for (const code of ['EACCES', 'EROFS', 'ENOSPC', 'ENOTDIR', 'EEXIST']) {
      expect(fault({ code, path: '/srv/artifacts/runs/r1/.tmp-step-00000010' })).toMatch(new RegExp(`^ARTIFACT_DIR /srv/artifacts cannot be written \\(${code} on /srv/artifacts/runs/r1/.tmp-step-00000010\\): make it a writable directory`));
    }
    expect(fault({ code: 'EACCES', path: '/srv/artifacts' })).toMatch(/^ARTIFACT_DIR/);
    // A sibling that only shares the prefix is not inside it.
    expect(fault({ code: 'EACCES', path: '/srv/artifacts-old/x' })).toBeUndefined();
  });

  it('a data set directory that became unreadable, or lost a file it held at start, is the machine\'s', () => {
    expect(fault({ code: 'EACCES', path: '/data/fashion-mnist/train-images-idx3-ubyte.gz' })).toMatch(/^the data set directory \/data\/fashion-mnist cannot be read \(EACCES on .*train-images/);
    expect(fault({ code: 'ENOTDIR', path: '/data/fashion-mnist/t10k-labels-idx1-ubyte.gz' })).toMatch(/cannot be read \(ENOTDIR/);
    expect(fault({ name: 'DatasetMissingError', path: '/data/fashion-mnist/train-images-idx3-ubyte.gz' })).toMatch(/^the data set directory \/data\/fashion-mnist lost .*train-images.* since the worker found it complete/);
    // A data set this worker never had is not a fault of its machine (missing-dataset.ts decides).
    expect(fault({ name: 'DatasetMissingError', path: '/data/cifar10/data_batch_1.bin' })).toBeUndefined();
  });

  it('a backend that fails to load or initialise, and a full or read-only disk anywhere, are the machine\'s', () => {
    expect(fault({ name: 'GpuSelectionError', message: 'no adapter', phase: 'startup' })).toMatch(/^the compute backend failed to load or initialise \(GpuSelectionError: no adapter\)/);
    expect(fault({ code: 'ENOSPC', path: '/tmp/ddae-wasm/worker.js', message: 'no space left on device' })).toMatch(/^the disk is full or read-only \(Error ENOSPC: no space left/);
    expect(fault({ code: 'EROFS', message: 'read-only file system' })).toMatch(/^the disk is full or read-only/);
  });

  it('knows every file system code it lists, and the disk codes wherever the write went', () => {
    for (const code of ['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOENT', 'EIO', 'ESTALE']) {
      expect(fault({ code, path: '/srv/artifacts/runs/r1/x' })).toMatch(/^ARTIFACT_DIR/);
    }
    for (const code of ['ENOSPC', 'EDQUOT', 'EROFS']) expect(fault({ code, path: '/elsewhere/x' })).toMatch(/^the disk is full or read-only/);
    // An error named by its own code (as some libraries throw them) does not repeat it.
    expect(fault({ name: 'ENOSPC', code: 'ENOSPC', message: 'no space left' })).toMatch(/^the disk is full or read-only \(ENOSPC: no space left\)/);
  });

  it('the job\'s own failures are not: a diverged loss, a bad payload, a killed child, an error elsewhere', () => {
    expect(fault({ name: 'NonFiniteLossError', message: 'loss is NaN at step 3', phase: 'task' })).toBeUndefined();
    expect(fault({ name: 'ZodError', message: 'invalid', phase: 'task' })).toBeUndefined();
    expect(fault({ name: 'ComputeProcessExit', message: 'compute child exited unexpectedly (code null, signal SIGKILL)' })).toBeUndefined();
    expect(fault({ code: 'ENOENT', path: '/home/someone/spec.yaml' })).toBeUndefined();
    expect(fault({ code: 'ECONNREFUSED', path: '/srv/artifacts' })).toBeUndefined();
    // Any other error about a file of a data set the worker holds is the job's (a corrupt file, say).
    expect(fault({ name: 'IdxFormatError', message: 'bad magic', path: '/data/fashion-mnist/train-images-idx3-ubyte.gz' })).toBeUndefined();
  });

  it('a real system error, as Node throws it and the child sends it, carries the code and path the classifier reads', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'ddae-fault-'));
    try {
      // A directory replaced by a regular file: fails for every user, root included.
      const artifacts = path.join(root, 'artifacts');
      await writeFile(artifacts, '');
      const error = await mkdir(path.join(artifacts, 'runs', 'r1'), { recursive: true }).then(() => undefined, (e: NodeJS.ErrnoException) => e);
      expect(error?.code).toBe('ENOTDIR');
      // As it crosses the compute child's IPC channel (structured clone drops an Error's own fields).
      const wire = structuredClone(serializeError(error, 'task'));
      expect(wire).toMatchObject({ name: 'Error', code: 'ENOTDIR', syscall: 'mkdir', phase: 'task' });
      expect(environmentFault(wire, { artifactRoot: artifacts, datasetDirs: [] })).toMatch(/^ARTIFACT_DIR .*artifacts cannot be written \(ENOTDIR on /);
      // Before the child was ready, any failure is its backend's.
      expect(environmentFault(structuredClone(serializeError(new Error('no adapter'), 'startup')), { artifactRoot: artifacts, datasetDirs: [] })).toMatch(/^the compute backend failed to load/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
