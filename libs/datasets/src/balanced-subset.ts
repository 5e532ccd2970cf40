/**
 * A class-balanced subset of `budget` images out of a pool (the probe's training images, in their
 * seeded order): `floor(budget / classes)` images per class, one more each for the classes below
 * `budget % classes`, every class's images taken in pool order. The pool's order is seeded, so the
 * same seed gives the same subset, and a smaller budget's subset is nested in a larger one's. A
 * class with fewer images in the pool than its share gives all it has and the shortfall is taken,
 * in pool order, from the other classes' next images (the budget is always met exactly).
 *
 * @param labels the class of each pool position, in pool order
 * @returns the chosen pool positions, ascending (pool order)
 */
export function balancedSubset(labels: ArrayLike<number>, budget: number, classes: number): Uint32Array {
  if (!Number.isInteger(classes) || classes <= 0) throw new RangeError(`classes must be a positive integer, got ${classes}`);
  if (!Number.isInteger(budget) || budget <= 0) throw new RangeError(`a label budget must be a positive integer, got ${budget}`);
  if (budget < classes) throw new RangeError(`a budget of ${budget} labels cannot cover ${classes} classes: use at least ${classes}`);
  if (budget > labels.length) throw new RangeError(`a budget of ${budget} labels exceeds the ${labels.length} training images it is drawn from: raise trainSize or lower the budget`);
  const quota = Array.from({ length: classes }, (_, c) => Math.floor(budget / classes) + (c < budget % classes ? 1 : 0));
  const taken = new Uint8Array(labels.length);
  let count = 0;
  for (let i = 0; i < labels.length && count < budget; i++) {
    const c = labels[i];
    if (c < 0 || c >= classes || !Number.isInteger(c)) throw new RangeError(`label ${c} at position ${i} is not one of the ${classes} classes`);
    if (quota[c] > 0) {
      quota[c]--;
      taken[i] = 1;
      count++;
    }
  }
  // A class short of images: the rest of the budget from the others, in pool order.
  for (let i = 0; i < labels.length && count < budget; i++) {
    if (!taken[i]) {
      taken[i] = 1;
      count++;
    }
  }
  const out = new Uint32Array(budget);
  for (let i = 0, k = 0; i < labels.length && k < budget; i++) if (taken[i]) out[k++] = i;
  return out;
}
