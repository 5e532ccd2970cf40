import * as tf from '@tensorflow/tfjs';
import { conv2d, conv2dWithCustomGradients } from './conv';
import { Rng } from './rng';

describe('conv2d with custom gradients', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  const cases: { k: number; stride: 1 | 2; pad: number }[] = [
    { k: 3, stride: 1, pad: 1 },
    { k: 3, stride: 2, pad: 1 },
    { k: 1, stride: 1, pad: 0 },
  ];

  it.each(cases)('matches native tf.conv2d value and gradients: k=$k stride=$stride pad=$pad', ({ k, stride, pad }) => {
    const rng = new Rng(7);
    const x = tf.tensor4d(rng.normal(2 * 8 * 8 * 3), [2, 8, 8, 3]);
    const w = tf.tensor4d(rng.normal(k * k * 3 * 5), [k, k, 3, 5]);
    const ySeed = rng.normal(2 * (8 / stride) * (8 / stride) * 5);
    const padArg = pad === 0 ? 'valid' : ([[0, 0], [pad, pad], [pad, pad], [0, 0]] as [[0, 0], [number, number], [number, number], [0, 0]]);
    const lossOf = (f: (a: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor4D) => (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D), tf.tensor(ySeed, [2, 8 / stride, 8 / stride, 5])));
    const native = tf.grads(lossOf((a, b) => tf.conv2d(a, b, stride, padArg)))([x, w]);
    const custom = tf.grads(lossOf((a, b) => conv2dWithCustomGradients(a, b, stride, pad)))([x, w]);
    const yN = tf.conv2d(x, w, stride, padArg);
    const yC = conv2dWithCustomGradients(x, w, stride, pad);
    // On cpu (which has both gradient kernels) the public conv2d is tf.conv2d itself.
    expect(tf.max(tf.abs(tf.sub(conv2d(x, w, stride, pad), yN))).dataSync()[0]).toBe(0);
    expect(yC.shape).toEqual(yN.shape);
    expect(tf.max(tf.abs(tf.sub(yC, yN))).dataSync()[0]).toBeLessThan(1e-4);
    for (let i = 0; i < 2; i++) {
      expect(custom[i].shape).toEqual(native[i].shape);
      expect(tf.max(tf.abs(tf.sub(custom[i], native[i]))).dataSync()[0]).toBeLessThan(1e-4);
    }
  });
});
