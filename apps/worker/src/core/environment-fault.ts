import path from 'node:path';

/** An error as the worker sees it: the compute child's (serialized) or its own. */
export interface FaultError {
  name: string;
  message: string;
  /** A system error's code: EACCES, EROFS, ENOSPC, ENOTDIR, ... */
  code?: string;
  /** The path a system error failed on (or the file a DatasetMissingError looked for). */
  path?: string;
  /** startup: the compute child failed before it was ready, loading or initialising its backend. */
  phase?: 'startup' | 'task';
}

/** Where this worker's environment lives: what it was found fit to use when it started. */
export interface FaultSite {
  /** ARTIFACT_DIR, resolved: checkpoints, samples and feature caches are written there. */
  artifactRoot: string;
  /** The directories of the data sets the worker has found complete (at start, in a heartbeat, before a job). */
  datasetDirs: string[];
}

/** File system errors that say the place is unusable, not that the job asked for something wrong. */
const FS_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOENT', 'EIO', 'ESTALE']);
/** The disk itself: full or read-only, wherever the write went. */
const DISK_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

function inside(dir: string, p: string): boolean {
  const rel = path.relative(dir, path.resolve(p));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Whether a job's failure is this worker's environment's fault rather than the job's, by what
 * failed (the error's code) and where (its path, or the phase it happened in):
 * - the compute backend failed to load or initialise (the child failed before it was ready);
 * - a file system error under ARTIFACT_DIR (a checkpoint, sample or feature cache write: EACCES,
 *   EROFS, ENOSPC, ENOTDIR when the directory became a file, ...);
 * - a file system error under a data set directory, or a data set file missing from a directory
 *   that held the whole data set when the worker looked (it vanished);
 * - a full or read-only disk (ENOSPC, EDQUOT, EROFS) anywhere.
 * Such a job is handed back for another worker without spending an attempt, and this worker stops
 * taking jobs. Anything else (a diverged loss, a bad payload) is the job's: the normal retry policy
 * applies. A data set this worker never could read is neither: see missing-dataset.ts.
 * @returns the reason, naming the fault, the place and the fix; undefined when the job is at fault.
 */
export function environmentFault(error: FaultError, site: FaultSite): string | undefined {
  const what = `${error.name}${error.code && error.code !== error.name ? ` ${error.code}` : ''}: ${error.message}`;
  if (error.phase === 'startup') return `the compute backend failed to load or initialise (${what}): check the worker's DDAE_BACKEND, DDAE_GPU and its drivers, then restart it`;
  const at = error.path === undefined ? undefined : path.resolve(error.path);
  const dataset = at === undefined ? undefined : site.datasetDirs.find((dir) => inside(dir, at));
  if (error.code && FS_CODES.has(error.code) && at !== undefined) {
    if (inside(site.artifactRoot, at)) return `ARTIFACT_DIR ${site.artifactRoot} cannot be written (${error.code} on ${at}): make it a writable directory again (or point ARTIFACT_DIR at one) and restart the worker`;
    if (dataset) return `the data set directory ${dataset} cannot be read (${error.code} on ${at}): restore it (or point DDAE_DATA_DIR at a readable copy) and restart the worker`;
  }
  if (error.code && DISK_CODES.has(error.code)) return `the disk is full or read-only (${what}): free space or remount it read-write and restart the worker`;
  if (error.name === 'DatasetMissingError' && dataset) return `the data set directory ${dataset} lost ${at} since the worker found it complete: restore it and restart the worker`;
  return undefined;
}
