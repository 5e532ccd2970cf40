import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ProgressPoint } from '@ddae/contracts';

/**
 * True when the last `patience` probes all failed to beat the best accuracy before them by at
 * least `minDelta`: the probe has plateaued and pretraining may stop.
 */
export function plateaued(accuracies: readonly number[], patience: number, minDelta: number): boolean {
  if (accuracies.length <= patience) return false;
  const before = Math.max(...accuracies.slice(0, accuracies.length - patience));
  const recent = Math.max(...accuracies.slice(accuracies.length - patience));
  return recent < before + minDelta;
}

const HISTORY_FILE = 'progress-probes.json';

/** The probes of this run so far, kept beside its checkpoints so that a resumed run keeps its patience. */
export function readProgressHistory(checkpointDir: string): ProgressPoint[] {
  try {
    const points = JSON.parse(fs.readFileSync(path.join(checkpointDir, HISTORY_FILE), 'utf8')) as ProgressPoint[];
    return Array.isArray(points) ? points.sort((a, b) => a.step - b.step) : [];
  } catch {
    return [];
  }
}

export function writeProgressHistory(checkpointDir: string, points: ProgressPoint[]): void {
  const file = path.join(checkpointDir, HISTORY_FILE);
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, JSON.stringify(points));
  fs.renameSync(tmp, file);
}
