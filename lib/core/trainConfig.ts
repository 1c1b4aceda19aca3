/**
 * The training config: one typed object with documented defaults, checked in one place.
 * Everything that trains (the loop, the optimizers, checkpoints, the command line) reads it.
 */
import { checkInputSize } from './model';
import { ConfigError, inRange, oneOf, positiveFinite, positiveInt, withDefaults } from './validate';

export interface TrainConfig {
  /** Passes over the training set. @default 5 */
  numEpochs: number;
  /**
   * Which update rule: `sgd` (the chapter's; with `momentum` if set) or `adam` (Kingma & Ba,
   * β1 0.9, β2 0.999, ε 1e-7; its two moving averages per weight are saved in checkpoints).
   * Adam wants a much smaller `lr` than SGD, typically 0.001. @default 'sgd'
   */
  optimizer: OptimizerName;
  /** Learning rate (NiN takes a larger one than AlexNet); the peak when a schedule decays it. @default 0.1 */
  lr: number;
  /**
   * How the learning rate moves over the run: `constant` (the chapter's); `cosine`, which
   * starts at `lr` and follows half a cosine down towards 0 at the last step of the last
   * epoch; or `linear`, which falls along a straight line to 0 there. See
   * {@link learningRateAt}. @default 'constant'
   */
  lrSchedule: LrSchedule;
  /**
   * Steps over which the rate climbs linearly from `lr / warmupSteps` to `lr` before the
   * schedule starts (the cosine then spans the remaining steps). A warm-up keeps the first,
   * largest updates of a freshly initialised network small while its features form; see
   * {@link learningRateAt}. 0 turns it off. @default 0
   */
  warmupSteps: number;
  /**
   * SGD momentum in [0, 1): 0 is the chapter's plain SGD; 0.9 is the usual heavy-ball value.
   * Its velocity (one tensor per weight) is part of the optimizer's state, which checkpoints
   * save. Only for `sgd` (Adam has its own averages). @default 0
   */
  momentum: number;
  /**
   * Before the first step of a fresh run, raise each bias of the class block (NiN's last
   * block) whose channel falls below this value anywhere on the first 256 training images,
   * just enough to reach it, so that no class starts silent (lib/classBlockLift.ts). 0 turns
   * it off (the chapter's). @default 0
   */
  classBlockMargin: number;
  /**
   * Label smoothing ε: the loss compares the scores with a target of 1 − ε + ε/10 on the true
   * class and ε/10 on each other class instead of a one-hot vector (Szegedy et al. 2016), which
   * keeps the scores from growing without end. The training loss reported includes it. 0 is the
   * chapter's plain cross-entropy. @default 0
   */
  labelSmoothing: number;
  /** Examples per step. @default 128 */
  batchSize: number;
  /** Side the 28×28 images are resized to, per batch; must match the model's input. @default 224 */
  resize: number;
  /**
   * Seed of the per-epoch shuffle and of the dropout masks: the mask of step s of epoch e is
   * drawn from `deriveSeed(seed, e, s, piece)`, so a run is reproducible and can be resumed
   * at any step. @default 0
   */
  seed: number;
  /**
   * Examples per forward/backward pass. A batch larger than this is processed in pieces
   * whose gradients are summed before the one SGD update: the same step, less memory.
   * Undefined picks it from the activation size: the whole batch, except on wasm, whose heap
   * cannot pass ~2 GB, where activations are kept near 1 GB. @default undefined (auto)
   */
  microBatchSize?: number;
}

export const OPTIMIZERS = ['sgd', 'adam'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

export const LR_SCHEDULES = ['constant', 'cosine', 'linear'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

export const TRAIN_DEFAULTS: Readonly<TrainConfig> = Object.freeze({
  numEpochs: 5,
  optimizer: 'sgd',
  lr: 0.1,
  lrSchedule: 'constant',
  warmupSteps: 0,
  momentum: 0,
  classBlockMargin: 0,
  labelSmoothing: 0,
  batchSize: 128,
  resize: 224,
  seed: 0,
  microBatchSize: undefined,
});

/** Fills defaults and checks every field; throws a ConfigError naming the first bad one. */
export function resolveTrainConfig(partial: Partial<TrainConfig> = {}): TrainConfig {
  const c = withDefaults('training', partial, TRAIN_DEFAULTS);
  positiveInt('numEpochs', c.numEpochs);
  oneOf('optimizer', c.optimizer, OPTIMIZERS);
  positiveFinite('lr', c.lr);
  oneOf('lrSchedule', c.lrSchedule, LR_SCHEDULES);
  positiveInt('warmupSteps', c.warmupSteps, 0);
  inRange('momentum', c.momentum, 0, 1);
  if (c.optimizer === 'adam' && c.momentum > 0) {
    throw new ConfigError((n) => `${n} must be 0 with the adam optimizer (it keeps its own moving averages, β1 0.9), ` +
      `got ${c.momentum}; leave ${n} out, or use the sgd optimizer`, 'momentum');
  }
  if (typeof c.classBlockMargin !== 'number' || !(c.classBlockMargin >= 0 && c.classBlockMargin <= 10)) {
    throw new ConfigError((n) => `${n} must be a number from 0 to 10, got ${String(c.classBlockMargin)}`, 'classBlockMargin');
  }
  inRange('labelSmoothing', c.labelSmoothing, 0, 1);
  positiveInt('batchSize', c.batchSize);
  positiveInt('seed', c.seed, 0);
  if (c.microBatchSize !== undefined) positiveInt('microBatchSize', c.microBatchSize);
  checkInputSize('resize', c.resize);
  return c;
}

