import * as tf from '@tensorflow/tfjs';

/**
 * Top-1 accuracy. `predictions` is either logits / scores [N, classes] (a tensor; argmax per row)
 * or predicted class indices (a 1-D tensor or an array). Tensors passed in are not disposed.
 * Async: a tensor is read with `data()` (GPU backends have no synchronous read).
 */
export async function accuracy(predictions: tf.Tensor1D | tf.Tensor2D | ArrayLike<number>, labels: ArrayLike<number>): Promise<number> {
  let predicted: ArrayLike<number>;
  if (predictions instanceof tf.Tensor) {
    const classes = predictions.rank === 2 ? tf.tidy(() => tf.argMax(predictions, 1)) : predictions;
    try {
      predicted = (await classes.data()) as ArrayLike<number>;
    } finally {
      if (classes !== predictions) classes.dispose();
    }
  } else {
    predicted = predictions;
  }
  if (predicted.length !== labels.length) throw new RangeError(`${predicted.length} predictions for ${labels.length} labels`);
  if (labels.length === 0) throw new RangeError('accuracy of an empty set');
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct / labels.length;
}

/** Summary of a metric over seeds. */
export interface Spread {
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator); 0 for a single value. */
  std: number;
  min: number;
  max: number;
  n: number;
}

/** Mean, sample standard deviation, min, max and count of `values` (e.g. accuracies over seeds). */
export function meanAndSpread(values: number[]): Spread {
  const n = values.length;
  if (n === 0) throw new RangeError('meanAndSpread of no values');
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const std = n < 2 ? 0 : Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
  return { mean, std, min: Math.min(...values), max: Math.max(...values), n };
}
