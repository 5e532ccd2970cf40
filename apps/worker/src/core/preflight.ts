import { access, constants, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DATASET_NAMES } from '@ddae/contracts';

/** What a worker needs of its machine before it takes a job (the backend is probed apart). */
export interface PreflightEnv {
  ARTIFACT_DIR: string;
  DDAE_DATA_DIR?: string;
}

/**
 * Checks the worker's environment before it takes work, so that a misconfigured machine refuses
 * to start (naming the fix) instead of taking jobs and failing each one: the artifact directory
 * must be writable (checkpoints), and a DDAE_DATA_DIR, when set, a readable folder holding at least
 * one data set. Returns one line per problem; empty when the machine is fit.
 */
export async function preflightProblems(env: PreflightEnv): Promise<string[]> {
  const problems: string[] = [];
  const artifacts = path.resolve(env.ARTIFACT_DIR);
  try {
    await mkdir(artifacts, { recursive: true });
    const probe = path.join(artifacts, `.preflight-${process.pid}`);
    await writeFile(probe, 'ok');
    await rm(probe, { force: true });
  } catch (error) {
    problems.push(
      `ARTIFACT_DIR=${env.ARTIFACT_DIR} is not writable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): checkpoints go there; make it writable by this user or point ARTIFACT_DIR at a writable directory (a shared mount when workers span machines)`,
    );
  }
  if (env.DDAE_DATA_DIR !== undefined) {
    const dir = path.resolve(env.DDAE_DATA_DIR);
    const holds = `a folder holding ${DATASET_NAMES.map((n) => `${n}/`).join(', ')} or some of them`;
    try {
      if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await access(dir, constants.R_OK | constants.X_OK);
      const present = (await Promise.all(DATASET_NAMES.map(async (n) => ((await stat(path.join(dir, n)).catch(() => null))?.isDirectory() ? n : null)))).filter(Boolean);
      if (present.length === 0) problems.push(`DDAE_DATA_DIR=${env.DDAE_DATA_DIR} holds no data set: set it to ${holds}, or unset it to read each data set from its Debian path`);
    } catch (error) {
      problems.push(`DDAE_DATA_DIR=${env.DDAE_DATA_DIR} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): set it to ${holds}, or unset it to read each data set from its Debian path`);
    }
  }
  return problems;
}

/** A worker whose machine is not fit to take work: it refuses to start. */
export class PreflightError extends Error {
  override readonly name = 'PreflightError';
  constructor(readonly problems: string[]) {
    super(`this worker refuses to start: ${problems.length === 1 ? problems[0] : `\n${problems.map((p) => `  - ${p}`).join('\n')}`}`);
  }
}
