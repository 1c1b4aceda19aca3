/**
 * Training and evaluation: minibatch SGD on softmax cross-entropy, as the chapter trains NiN.
 *
 * `train` knows nothing of plots or terminals: it reports through callbacks and returns the
 * history. Every tensor a step creates is released before the next one (tests check
 * `tf.memory().numTensors`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { batches, FashionMnistSplit, numBatches } from './data/fashionMnist';
import { ConfigError, knownKeys, positiveFinite, positiveInt } from './validate';
import { MIN_INPUT_SIZE } from './model';

export interface TrainConfig {
  /** Passes over the training set. @default 5 */
  numEpochs: number;
  /** SGD learning rate (NiN takes a larger one than AlexNet). @default 0.1 */
  lr: number;
  /** Examples per step. @default 128 */
  batchSize: number;
  /** Side the 28×28 images are resized to, per batch; must match the model's input. @default 224 */
  resize: number;
  /** Seed of the per-epoch shuffle. @default 0 */
  seed: number;
}

export const TRAIN_DEFAULTS: Readonly<TrainConfig> = Object.freeze({
  numEpochs: 5,
  lr: 0.1,
  batchSize: 128,
  resize: 224,
  seed: 0,
});

/** Fills defaults and checks every field; throws a ConfigError naming the first bad one. */
export function resolveTrainConfig(partial: Partial<TrainConfig> = {}): TrainConfig {
  knownKeys('training', partial, TRAIN_DEFAULTS);
  const given = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  const c = { ...TRAIN_DEFAULTS, ...given } as TrainConfig;
  positiveInt('numEpochs', c.numEpochs);
  positiveFinite('lr', c.lr);
  positiveInt('batchSize', c.batchSize);
  positiveInt('seed', c.seed, 0);
  if (!Number.isInteger(c.resize) || c.resize < MIN_INPUT_SIZE) {
    throw new ConfigError(`resize must be an integer of at least ${MIN_INPUT_SIZE} px for NiN, got ${c.resize}`);
  }
  return c;
}

/** One row of the history: what d2l's trainer prints after each epoch. */
export interface EpochResult {
  /** 1-based. */
  epoch: number;
  /** Mean training loss over the epoch's examples (with dropout active). */
  trainLoss: number;
  /** Fraction of training examples classified correctly during the epoch. */
  trainAcc: number;
  /** Accuracy on the test split after the epoch. */
  testAcc: number;
  /** Training examples per second (training steps only, evaluation excluded). */
  examplesPerSec: number;
  /** Wall time of the epoch, evaluation included. */
  seconds: number;
}

export interface TrainHistory {
  config: TrainConfig;
  epochs: EpochResult[];
}

export interface BatchInfo {
  epoch: number;
  /** 0-based index within the epoch. */
  batch: number;
  numBatches: number;
  loss: number;
  /** Fraction correct in this batch. */
  acc: number;
}

export interface TrainCallbacks {
  /** After every training step. May be async (a notebook redrawing a plot). */
  onBatchEnd?: (info: BatchInfo) => void | Promise<void>;
  /** After each epoch's evaluation. */
  onEpochEnd?: (result: EpochResult, history: TrainHistory) => void | Promise<void>;
}

export interface TrainData {
  train: FashionMnistSplit;
  test: FashionMnistSplit;
}

/** The loss or its gradient became NaN or infinite; the message says where and what to try. */
export class DivergedError extends Error {
  override name = 'DivergedError';
}

/** Mean softmax cross-entropy of integer labels `ys` [N] against `logits` [N, classes]. */
export function crossEntropy(logits: tf.Tensor2D, ys: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(ys, logits.shape[1]), logits) as tf.Scalar);
}

/** Number of rows of `logits` whose argmax equals the label. */
function countCorrect(logits: tf.Tensor2D, ys: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(ys, 'int32')), 'int32')) as tf.Scalar);
}

function checkInputSize(model: tfl.LayersModel, resize: number): void {
  const shape = model.inputs[0].shape; // [null, H, W, C]
  if (shape[1] !== resize || shape[2] !== resize) {
    throw new ConfigError(`the model takes ${shape[1]}×${shape[2]} images but resize is ${resize}; ` +
      `build it with nin({ inputSize: ${resize} })`);
  }
}

/**
 * Trains `model` in place with SGD and returns the per-epoch history. The model must have
 * been built for `config.resize` pixels.
 */
export async function train(
  model: tfl.LayersModel, data: TrainData, partial: Partial<TrainConfig> = {}, callbacks: TrainCallbacks = {},
): Promise<TrainHistory> {
  const config = resolveTrainConfig(partial);
  checkInputSize(model, config.resize);
  const optimizer = tf.train.sgd(config.lr);
  const history: TrainHistory = { config, epochs: [] };
  const steps = numBatches(data.train.count, config.batchSize);
  try {
    for (let epoch = 1; epoch <= config.numEpochs; epoch++) {
      const start = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let batch = 0;
      const order = { batchSize: config.batchSize, resize: config.resize, shuffle: true, seed: config.seed, epoch };
      for (const { xs, ys } of batches(data.train, order)) {
        let rightT: tf.Scalar | undefined;
        const lossT = optimizer.minimize(() => {
          const logits = model.apply(xs, { training: true }) as tf.Tensor2D; // [B, classes]
          rightT = tf.keep(countCorrect(logits, ys));
          return crossEntropy(logits, ys);
        }, true) as tf.Scalar;
        const [loss] = lossT.dataSync();
        const [right] = rightT!.dataSync();
        const n = xs.shape[0];
        tf.dispose([xs, ys, lossT, rightT!]);
        if (!Number.isFinite(loss)) {
          throw new DivergedError(`training diverged: the loss is ${loss} at epoch ${epoch}, step ${batch + 1} of ` +
            `${steps}; try a smaller learning rate than ${config.lr} (e.g. --lr ${config.lr / 10})`);
        }
        lossSum += loss * n;
        correct += right;
        seen += n;
        await callbacks.onBatchEnd?.({ epoch, batch, numBatches: steps, loss, acc: right / n });
        batch++;
      }
      const trainSeconds = (performance.now() - start) / 1000;
      const testAcc = evaluateAccuracy(model, data.test, { batchSize: config.batchSize, resize: config.resize });
      const result: EpochResult = {
        epoch,
        trainLoss: lossSum / seen,
        trainAcc: correct / seen,
        testAcc,
        examplesPerSec: seen / trainSeconds,
        seconds: (performance.now() - start) / 1000,
      };
      history.epochs.push(result);
      await callbacks.onEpochEnd?.(result, history);
    }
  } finally {
    optimizer.dispose();
  }
  return history;
}

/** Fraction of `split` that `model` (in inference mode: no dropout) classifies correctly. */
export function evaluateAccuracy(
  model: tfl.LayersModel, split: FashionMnistSplit, options: { batchSize: number; resize: number },
): number {
  let correct = 0;
  for (const { xs, ys } of batches(split, { ...options, shuffle: false, seed: 0, epoch: 0 })) {
    const right = tf.tidy(() => countCorrect(model.predict(xs) as tf.Tensor2D, ys));
    correct += right.dataSync()[0];
    tf.dispose([xs, ys, right]);
  }
  return split.count === 0 ? 0 : correct / split.count;
}

/** Predicted class index for each of the first `count` examples of `split`. */
export function predict(model: tfl.LayersModel, split: FashionMnistSplit, resize: number, count = split.count): number[] {
  const sub: FashionMnistSplit = { ...split, count: Math.min(count, split.count) };
  const out: number[] = [];
  for (const { xs, ys } of batches(sub, { batchSize: 256, resize, shuffle: false, seed: 0, epoch: 0 })) {
    const classes = tf.tidy(() => tf.argMax(model.predict(xs) as tf.Tensor2D, 1));
    out.push(...classes.dataSync());
    tf.dispose([xs, ys, classes]);
  }
  return out;
}
