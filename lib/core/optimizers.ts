/**
 * The update rules: which tfjs optimizer a config asks for (plain SGD, SGD with momentum,
 * Adam), its learning rate at each step (constant, or decaying on a cosine or a straight line, with an optional warm-up), and
 * releasing it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { OptimizerName, TrainConfig } from './trainConfig';

/** Adam's constants (tfjs's defaults, with ε fixed rather than taken from the backend). */
export const ADAM = Object.freeze({ beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });

/** The fields that pick the update rule; `optimizer` may be left out (SGD). */
export type UpdateRule = Pick<TrainConfig, 'momentum' | 'lr'> & { optimizer?: OptimizerName };

/** `sgd`, `momentum` or `adam`: the update rule a config describes, as checkpoints name it. */
export function optimizerKind(config: UpdateRule): 'sgd' | 'momentum' | 'adam' {
  if (config.optimizer === 'adam') return 'adam';
  return config.momentum > 0 ? 'momentum' : 'sgd';
}

/** Whether the config's optimizer keeps per-weight state (momentum's velocity, Adam's averages). */
export function hasOptimizerState(config: UpdateRule): boolean {
  return optimizerKind(config) !== 'sgd';
}

/** An optimizer whose rate can be set between steps: what {@link makeOptimizer} gives. */
export type NinOptimizer = tf.Optimizer & { setLearningRate(lr: number): void };

/**
 * The kernel a backend may provide for one Adam step of a weight tensor in one pass (the
 * native addon does, lib/kernels/native.ts): inputs `w`, `g` (its gradient), `m`, `v` (the
 * moments), `accBeta1`, `accBeta2` (β1^t, β2^t, scalars); attrs `beta1`, `beta2`, `epsilon`,
 * `learningRate`; outputs [w', m', v'], the same bits as tfjs's AdamOptimizer computes.
 */
export const ADAM_UPDATE = 'NinAdamUpdate';

/** The attrs of {@link ADAM_UPDATE}. */
export interface AdamUpdateAttrs {
  beta1: number;
  beta2: number;
  epsilon: number;
  learningRate: number;
}

/**
 * tfjs's Adam with the setter its SGD and momentum optimizers have (Adam reads its rate at
 * every step), and whose update runs as one {@link ADAM_UPDATE} kernel a weight where the
 * backend has it (tfjs's takes twelve operations, each a pass over the weights).
 */
class AdamWithRate extends tf.AdamOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }

  override applyGradients(gradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (tf.getKernel(ADAM_UPDATE, tf.getBackend()) === undefined) return super.applyGradients(gradients);
    const named = Array.isArray(gradients) ? gradients : Object.entries(gradients).map(([name, tensor]) => ({ name, tensor }));
    const attrs: AdamUpdateAttrs = { beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, learningRate: this.learningRate };
    const state = this as unknown as AdamState;
    tf.tidy(() => {
      named.forEach(({ name, tensor: g }, i) => {
        const w = tf.engine().registeredVariables[name];
        const m = moment(state.accumulatedFirstMoment, i, `${name}/m`, w);
        const v = moment(state.accumulatedSecondMoment, i, `${name}/v`, w);
        if (g == null) return;
        const inputs = { w, g, m, v, accBeta1: state.accBeta1, accBeta2: state.accBeta2 };
        const [w2, m2, v2] = tf.engine().runKernel(ADAM_UPDATE, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(m2);
        v.assign(v2);
        w.assign(w2);
      });
      state.accBeta1.assign(tf.mul(state.accBeta1, this.beta1));
      state.accBeta2.assign(tf.mul(state.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }
}

/** A moment tensor of tfjs's AdamOptimizer and the name it is saved under. */
interface MomentSlot {
  originalName: string;
  variable: tf.Variable;
}

/** The fields of tfjs's AdamOptimizer (private in its types) that its update reads and writes. */
interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: MomentSlot[];
  accumulatedSecondMoment: MomentSlot[];
}

/** Moment `i` of `list`, made as zeros shaped like `w` on the first step (as tfjs's Adam makes it). */
function moment(list: MomentSlot[], i: number, originalName: string, w: tf.Variable): tf.Variable {
  list[i] ??= { originalName, variable: tf.tidy(() => tf.zerosLike(w).variable(false)) };
  return list[i].variable;
}

/**
 * The optimizer a config asks for: plain SGD, SGD with momentum when `momentum > 0`, or Adam,
 * starting at `lr`. A training run sets the rate of every step from its schedule
 * ({@link learningRateAt}) through `setLearningRate`.
 */
export function makeOptimizer(config: UpdateRule): NinOptimizer {
  switch (optimizerKind(config)) {
    case 'adam': return new AdamWithRate(config.lr, ADAM.beta1, ADAM.beta2, ADAM.epsilon);
    case 'momentum': return tf.train.momentum(config.lr, config.momentum);
    case 'sgd': return tf.train.sgd(config.lr);
  }
}

/**
 * Releases an optimizer's tensors. (tfjs 4's `MomentumOptimizer.dispose` frees the velocity
 * but not the learning-rate scalar it inherits from SGD; disposing twice is harmless.)
 */
export function disposeOptimizer(optimizer: tf.Optimizer): void {
  optimizer.dispose();
  (optimizer as unknown as { c?: tf.Tensor }).c?.dispose();
}

/**
 * The learning rate of step `step` (0-based, counted from the run's first step) of a run of
 * `config.numEpochs × stepsPerEpoch` steps. The first `warmupSteps` steps climb linearly,
 * `lr · (step + 1) / warmupSteps`; after them the rate is `lr` throughout for `constant`, and
 * for `cosine` `lr · ½(1 + cos(π · t))` and for `linear` `lr · (1 − t)`, where t goes from 0
 * after the warm-up to 1 at the last step, so the rate falls from `lr` to nearly 0. A resumed
 * run that asks for more epochs stretches the rest of its decay.
 */
export function learningRateAt(
  config: Pick<TrainConfig, 'lr' | 'lrSchedule' | 'numEpochs'> & { warmupSteps?: number }, step: number, stepsPerEpoch: number,
): number {
  const warmup = config.warmupSteps ?? 0;
  if (step < warmup) return config.lr * (step + 1) / warmup;
  if (config.lrSchedule === 'constant') return config.lr;
  const total = config.numEpochs * stepsPerEpoch - warmup;
  const t = total <= 0 ? 1 : Math.min(step - warmup, total) / total;
  return config.lrSchedule === 'linear' ? config.lr * (1 - t) : config.lr * 0.5 * (1 + Math.cos(Math.PI * t));
}
