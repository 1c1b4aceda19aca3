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
  /**
   * Examples per forward/backward pass. A batch larger than this is processed in pieces
   * whose gradients are summed before the one SGD update: the same step, less memory.
   * Undefined picks it from the activation size: the whole batch, except on wasm, whose heap
   * cannot pass ~2 GB, where activations are kept near 1 GB. @default undefined (auto)
   */
  microBatchSize?: number;
}

export const TRAIN_DEFAULTS: Readonly<TrainConfig> = Object.freeze({
  numEpochs: 5,
  lr: 0.1,
  batchSize: 128,
  resize: 224,
  seed: 0,
  microBatchSize: undefined,
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
  if (c.microBatchSize !== undefined) positiveInt('microBatchSize', c.microBatchSize);
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

/** Activation memory the wasm backend may spend on one forward/backward pass. */
const WASM_ACTIVATION_BUDGET_BYTES = 1 << 30;

/**
 * Examples per forward/backward pass for `batchSize` on the active backend: the whole batch,
 * except on wasm, where the layers' outputs (kept for the backward pass, plus about as much
 * again for their gradients) must fit the budget. Batches are split evenly.
 */
export function autoMicroBatchSize(model: tfl.LayersModel, batchSize: number): number {
  if (tf.getBackend() !== 'wasm') return batchSize;
  const floatsPerExample = model.layers.reduce((sum, layer) => {
    const shape = (layer.outputShape as (number | null)[]).slice(1) as number[]; // drop the batch axis
    return sum + shape.reduce((a, b) => a * b, 1);
  }, 0);
  const fits = Math.max(1, Math.floor(WASM_ACTIVATION_BUDGET_BYTES / (floatsPerExample * 4 * 3)));
  if (fits >= batchSize) return batchSize;
  return Math.ceil(batchSize / Math.ceil(batchSize / fits));
}

/** What one SGD step measured. */
export interface StepResult {
  /** Mean loss over the batch. */
  loss: number;
  /** Examples classified correctly (before the update). */
  correct: number;
}

/**
 * One SGD step of `model` on a batch (xs [B, H, W, C], ys [B] class indices): forward with
 * dropout, backward, update. With `microBatchSize < B` the batch goes through in pieces and
 * the pieces' gradients (each weighted by its share of the batch) are summed first, so the
 * update is that of the whole batch. Leaves no tensors behind.
 */
export function sgdStep(
  model: tfl.LayersModel, optimizer: tf.Optimizer, xs: tf.Tensor4D, ys: tf.Tensor1D, microBatchSize: number,
): StepResult {
  const n = xs.shape[0];
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  let grads: tf.NamedTensorMap | undefined;
  let loss = 0;
  let correct = 0;
  for (let start = 0; start < n; start += microBatchSize) {
    const size = Math.min(microBatchSize, n - start);
    let rightT: tf.Scalar | undefined;
    const piece = tf.tidy(() => {
      const xb = size === n ? xs : tf.slice(xs, [start, 0, 0, 0], [size, -1, -1, -1]); // [b, H, W, C]
      const yb = size === n ? ys : tf.slice(ys, [start], [size]);
      return tf.variableGrads(() => {
        const logits = model.apply(xb, { training: true }) as tf.Tensor2D; // [b, classes]
        rightT = tf.keep(countCorrect(logits, yb));
        return tf.mul(crossEntropy(logits, yb), size / n) as tf.Scalar;
      }, variables);
    });
    loss += piece.value.dataSync()[0];
    correct += rightT!.dataSync()[0];
    tf.dispose([piece.value, rightT!]);
    if (grads === undefined) {
      grads = piece.grads;
    } else {
      for (const name of Object.keys(grads)) {
        const sum = tf.add(grads[name], piece.grads[name]);
        tf.dispose([grads[name], piece.grads[name]]);
        grads[name] = sum;
      }
    }
  }
  optimizer.applyGradients(grads!);
  tf.dispose(grads!);
  return { loss, correct };
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
  const microBatchSize = config.microBatchSize ?? autoMicroBatchSize(model, config.batchSize);
  try {
    for (let epoch = 1; epoch <= config.numEpochs; epoch++) {
      const start = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let batch = 0;
      const order = { batchSize: config.batchSize, resize: config.resize, shuffle: true, seed: config.seed, epoch };
      for (const { xs, ys } of batches(data.train, order)) {
        const n = xs.shape[0];
        const { loss, correct: right } = sgdStep(model, optimizer, xs, ys, microBatchSize);
        tf.dispose([xs, ys]);
        if (!Number.isFinite(loss)) {
          throw new DivergedError(`training diverged: the loss is ${loss} at epoch ${epoch}, step ${batch + 1} of ` +
            `${steps}; try a smaller learning rate than ${config.lr} (e.g. --lr ${Number((config.lr / 10).toPrecision(3))})`);
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
