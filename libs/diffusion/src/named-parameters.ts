import * as tf from '@tensorflow/tfjs';

let instanceCounter = 0;

/**
 * A network's weights: tf variables in a map under stable names (e.g. `in_1.conv1.w`), in creation
 * order (the checkpoint order), so the optimiser, EMA and checkpoints address weights by name.
 * The UNet and the DiT hold theirs this way.
 */
export abstract class NamedParameters {
  /** Named parameters in creation order (the checkpoint order). */
  readonly params = new Map<string, tf.Variable>();
  /** This instance's prefix of tf variable names: they are global in the tf engine, so models can coexist. */
  private readonly variablePrefix: string;

  /** @param kind the prefix's stem, `unet` or `dit` */
  protected constructor(kind: string) {
    this.variablePrefix = `${kind}${instanceCounter++}`;
  }

  /** Total number of scalar parameters. */
  parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Disposes every parameter. */
  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }

  /** The parameter `name`; throws on a name the network does not have. */
  protected p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`unknown parameter ${name}`);
    return v;
  }

  /** Creates the trainable parameter `name` with these initial values. */
  protected setParameter(name: string, values: Float32Array, shape: number[]): void {
    this.params.set(name, tf.tidy(() => tf.variable(tf.tensor(values, shape), true, `${this.variablePrefix}/${name}`)));
  }
}
