import { access, constants } from 'node:fs/promises';
import * as path from 'node:path';
import { DATASET_NAMES, type DatasetName } from '@ddae/contracts';
import { CIFAR10_FILES, datasetDir, DatasetMissingError, datasetMissingMessage, IDX_FILES, type LoadDatasetOptions } from './load-dataset';

/** Each file a data set's two splits are read from, as the candidates {@link loadDataset} tries (any one will do). */
function requiredFiles(name: DatasetName, dir: string): string[][] {
  if (name === 'cifar10') return [...CIFAR10_FILES.train, ...CIFAR10_FILES.test].map((f) => [path.join(dir, f), path.join(dir, 'cifar-10-batches-bin', f)]);
  return Object.values(IDX_FILES)
    .flatMap((f) => [f.images, f.labels])
    .map((gz) => [path.join(dir, gz), path.join(dir, gz.replace(/\.gz$/, ''))]);
}

async function readable(file: string): Promise<boolean> {
  return access(file, constants.R_OK).then(
    () => true,
    () => false,
  );
}

/**
 * Whether every file of a data set's train and test splits can be read where {@link loadDataset}
 * looks for it (a few `access` calls, nothing is decoded: a corrupt file is found when it is loaded).
 * @returns undefined when all can; else the {@link DatasetMissingError} loading it would meet,
 *   naming the first file that cannot be read and how to get the data set.
 */
export async function datasetProblem(name: DatasetName, opts: LoadDatasetOptions = {}): Promise<DatasetMissingError | undefined> {
  const dir = datasetDir(name, opts);
  for (const candidates of requiredFiles(name, dir)) {
    if (!(await someReadable(candidates))) return new DatasetMissingError(candidates[0], datasetMissingMessage(name, dir, candidates[0]));
  }
  return undefined;
}

async function someReadable(candidates: string[]): Promise<boolean> {
  for (const file of candidates) if (await readable(file)) return true;
  return false;
}

/**
 * The data sets whose files can all be read where {@link loadDataset} looks for them
 * (`$DDAE_DATA_DIR/<name>` or the Debian paths), in the order of DATASET_NAMES.
 */
export async function readableDatasets(): Promise<DatasetName[]> {
  const problems = await Promise.all(DATASET_NAMES.map((name) => datasetProblem(name)));
  return DATASET_NAMES.filter((_, i) => problems[i] === undefined);
}
