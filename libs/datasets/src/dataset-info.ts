import { DATASET_SHAPES, type DatasetName } from '@ddae/contracts';

/** Shape, size and class names of a data set. */
export interface DatasetInfo {
  name: DatasetName;
  /** Native height = width in pixels (before any padding for the UNet). */
  size: number;
  channels: number;
  classes: number;
  /** Images in the full training split. */
  train: number;
  /** Images in the full test split. */
  test: number;
  /** Human-readable class names, indexed by label. */
  classNames: readonly string[];
}

/** Class names, indexed by label. */
export const CLASS_NAMES: Record<DatasetName, readonly string[]> = {
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  cifar10: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
};

/** Shape (from the contracts' `DATASET_SHAPES`) and class names of a data set. */
export function datasetInfo(name: DatasetName): DatasetInfo {
  const shape = DATASET_SHAPES[name];
  if (!shape) throw new RangeError(`unknown data set "${String(name)}"`);
  return { name, ...shape, classNames: CLASS_NAMES[name] };
}
