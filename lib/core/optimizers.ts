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

/** tfjs's Adam with the setter its SGD and momentum optimizers have (Adam reads its rate at every step). */
class AdamWithRate extends tf.AdamOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }
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
