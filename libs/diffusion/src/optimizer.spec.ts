import * as tf from '@tensorflow/tfjs';
import { ADAM, adamIsFused, adamStep, type AdamEpsilon, type AdamSlot } from './optimizer';

/** Adam by hand, in float64, one value at a time: the textbook update the module must match. */
function referenceAdam(
  p: number[][],
  grads: number[][][],
  o: { lr: number[]; scale: number[]; decay: number[]; epsilon: AdamEpsilon },
): { p: number[][]; m: number[][]; v: number[][]; ema: number[][] } {
  const { beta1: b1, beta2: b2, epsilon: eps } = ADAM;
  const params = p.map((x) => [...x]);
  const m = p.map((x) => x.map(() => 0));
  const v = p.map((x) => x.map(() => 0));
  const ema = p.map((x) => [...x]);
  grads.forEach((stepGrads, s) => {
    const t = s + 1;
    params.forEach((x, k) => {
      for (let i = 0; i < x.length; i++) {
        const g = stepGrads[k][i] * o.scale[s];
        m[k][i] = b1 * m[k][i] + (1 - b1) * g;
        v[k][i] = b2 * v[k][i] + (1 - b2) * g * g;
        if (o.epsilon === 'corrected') {
          x[i] -= (o.lr[s] * (m[k][i] / (1 - b1 ** t))) / (Math.sqrt(v[k][i] / (1 - b2 ** t)) + eps);
        } else {
          x[i] -= ((o.lr[s] * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t)) * (m[k][i] / (Math.sqrt(v[k][i]) + eps));
        }
        ema[k][i] = o.decay[s] * ema[k][i] + (1 - o.decay[s]) * x[i];
      }
    });
  });
  return { p: params, m, v, ema };
}

const rng = (seed: number) => () => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 2 ** 32 - 0.5;
};

describe('adamStep (one Adam for the trainer and the probes)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  const shapes = [[3, 2], [5], [1, 4]];
  const r = rng(7);
  const init = shapes.map((s) => Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => r()));
  // Three steps of gradients, of different magnitudes (so that bias correction and epsilon matter).
  const grads = [1, 0.01, 3].map((mag) => shapes.map((s) => Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => r() * mag)));
  const lr = [1e-3, 5e-3, 2e-3];
  const scale = [1, 0.5, 0.25];
  const decay = [0, 0.9, 0.99];

  function run(epsilon: AdamEpsilon, scaleAs: 'number' | 'tensor' | 'none'): { p: number[][]; m: number[][]; v: number[][]; ema: number[][] } {
    const slots: AdamSlot[] = shapes.map((s, k) => ({
      param: tf.variable(tf.tensor(init[k], s)),
      m: tf.variable(tf.zeros(s)),
      v: tf.variable(tf.zeros(s)),
      ema: tf.variable(tf.tensor(init[k], s)),
    }));
    grads.forEach((stepGrads, i) => {
      const g = stepGrads.map((x, k) => tf.tensor(x, shapes[k]));
      const gradScale = scaleAs === 'none' ? undefined : scaleAs === 'number' ? scale[i] : tf.scalar(scale[i]);
      adamStep(slots, g, { step: i + 1, lr: lr[i], gradScale, emaDecay: decay[i], epsilon });
      tf.dispose([...g, ...(typeof gradScale === 'object' ? [gradScale] : [])]);
    });
    const read = (pick: (s: AdamSlot) => tf.Variable) => slots.map((s) => Array.from(pick(s).dataSync()));
    const out = { p: read((s) => s.param), m: read((s) => s.m), v: read((s) => s.v), ema: read((s) => s.ema as tf.Variable) };
    tf.dispose(slots.flatMap((s) => [s.param, s.m, s.v, s.ema as tf.Variable]));
    return out;
  }

  const expectClose = (got: number[][], want: number[][], tol: number) =>
    got.forEach((x, k) => x.forEach((value, i) => expect(Math.abs(value - want[k][i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want[k][i])))));

  it.each(['corrected', 'folded'] as const)('matches a hand-written float64 Adam (%s epsilon): parameters, moments and EMA over 3 steps', (epsilon) => {
    expect(adamIsFused()).toBe(false);
    const want = referenceAdam(init, grads, { lr, scale, decay, epsilon });
    const got = run(epsilon, 'number');
    expectClose(got.p, want.p, 1e-6);
    expectClose(got.m, want.m, 1e-6);
    expectClose(got.v, want.v, 1e-6);
    expectClose(got.ema, want.ema, 1e-6);
    // The parameters did move (the test can fail): by about lr per step.
    expect(Math.abs(got.p[0][0] - init[0][0])).toBeGreaterThan(1e-3);
  });

  it('takes the clipping scale as a number or as a tensor (kept on the device) with the same result; none is a scale of 1', () => {
    expect(run('corrected', 'tensor')).toEqual(run('corrected', 'number'));
    const unscaled = referenceAdam(init, grads, { lr, scale: [1, 1, 1], decay, epsilon: 'folded' });
    expectClose(run('folded', 'none').p, unscaled.p, 1e-6);
  });

  it('the two epsilon placements differ where epsilon matters (tiny gradients)', () => {
    const tiny = [[[1e-9]], [[1e-9]]];
    const a = referenceAdam([[0]], tiny, { lr: [1, 1], scale: [1, 1], decay: [0, 0], epsilon: 'corrected' }).p[0][0];
    const b = referenceAdam([[0]], tiny, { lr: [1, 1], scale: [1, 1], decay: [0, 0], epsilon: 'folded' }).p[0][0];
    expect(Math.abs(a - b)).toBeGreaterThan(1e-3);
    // And adamStep takes the placement it is asked for (float32 holds these magnitudes).
    const step = (epsilon: AdamEpsilon): number => {
      const slot: AdamSlot = { param: tf.variable(tf.zeros([1])), m: tf.variable(tf.zeros([1])), v: tf.variable(tf.zeros([1])) };
      for (const t of [1, 2]) tf.tidy(() => adamStep([slot], [tf.tensor1d([1e-9])], { step: t, lr: 1, epsilon }));
      const p = slot.param.dataSync()[0];
      tf.dispose([slot.param, slot.m, slot.v]);
      return p;
    };
    expect(step('corrected')).toBeCloseTo(a, 4);
    expect(step('folded')).toBeCloseTo(b, 4);
  });

  it('refuses gradients that do not match the parameters, and leaks no tensor', () => {
    const slot: AdamSlot = { param: tf.variable(tf.zeros([2])), m: tf.variable(tf.zeros([2])), v: tf.variable(tf.zeros([2])) };
    const g = tf.ones([2]);
    expect(() => adamStep([slot], [], { step: 1, lr: 1 })).toThrow(/0 gradients for 1 parameters/);
    adamStep([slot], [g], { step: 1, lr: 0.1 });
    const before = tf.memory().numTensors;
    adamStep([slot], [g], { step: 2, lr: 0.1, gradScale: 0.5 });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([slot.param, slot.m, slot.v, g]);
  });
});
