/**
 * Inference and evaluation: a model's predictions and accuracy on a labelled split, its
 * per-class accuracy and the confusion matrix, as `nin eval` prints them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { FASHION_MNIST_CLASSES, FashionMnistSplit, firstBatch, inOrder } from './fashionMnist';
import { logitSpread } from './health';
import { logitsOf } from './model';
import { ConfigError, positiveInt, UserError } from './validate';

/** Number of rows of `logits` whose argmax equals the label. */
export function countCorrect(logits: tf.Tensor2D, ys: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(ys, 'int32')), 'int32')) as tf.Scalar);
}

/** Fraction of `split` that `model` (in inference mode: no dropout) classifies correctly. */
export function evaluateAccuracy(
  model: tfl.LayersModel, split: FashionMnistSplit, options: { batchSize: number; resize: number },
): number {
  let correct = 0;
  for (const { xs, ys } of inOrder(split, options.batchSize, options.resize)) {
    const right = tf.tidy(() => countCorrect(logitsOf(model, xs), ys));
    correct += right.dataSync()[0];
    tf.dispose([xs, ys, right]);
  }
  return split.count === 0 ? 0 : correct / split.count;
}

/**
 * Predicted class index for each of the first `count` examples of `split` (inference mode),
 * `batchSize` examples per forward pass.
 */
export function predict(
  model: tfl.LayersModel, split: FashionMnistSplit, resize: number, count = split.count, batchSize = 256,
): number[] {
  const sub: FashionMnistSplit = { ...split, count: Math.min(count, split.count) };
  const out: number[] = [];
  for (const { xs, ys } of inOrder(sub, batchSize, resize)) {
    const classes = tf.tidy(() => tf.argMax(logitsOf(model, xs), 1));
    out.push(...classes.dataSync());
    tf.dispose([xs, ys, classes]);
  }
  return out;
}

/** One class's row of an evaluation. */
export interface ClassAccuracy {
  /** Class index (the label). */
  label: number;
  /** Its name, e.g. `t-shirt`. */
  name: string;
  /** Examples of this class in the split. */
  count: number;
  /** Of those, how many were predicted as this class. */
  correct: number;
  /** correct / count; null when the split has no example of the class. */
  accuracy: number | null;
}

/** A model's results on a labelled split, as `nin eval` reports them. */
export interface Evaluation {
  /** Examples evaluated. */
  count: number;
  /** Examples classified correctly. */
  correct: number;
  /** correct / count (0 for an empty split). */
  accuracy: number;
  /** One entry per class, in label order. */
  perClass: ClassAccuracy[];
  /** confusion[t][p]: examples of true class t predicted as p. Rows sum to the class counts. */
  confusion: number[][];
  /**
   * The model gave every image of the first batch exactly the same scores: its output does
   * not depend on its input (a dead network), so its accuracy is that of a constant guess.
   */
  constantOutput?: boolean;
}

/**
 * The confusion matrix of `predicted` against `labels` (same length): `numClasses` rows
 * (true class) of `numClasses` columns (predicted class) of counts.
 */
export function confusionMatrix(labels: ArrayLike<number>, predicted: ArrayLike<number>, numClasses: number): number[][] {
  positiveInt('numClasses', numClasses);
  if (labels.length !== predicted.length) {
    throw new ConfigError(`labels and predictions differ in length: ${labels.length} vs ${predicted.length}`);
  }
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i];
    const p = predicted[i];
    if (!Number.isInteger(t) || t < 0 || t >= numClasses || !Number.isInteger(p) || p < 0 || p >= numClasses) {
      throw new ConfigError(`class index out of 0..${numClasses - 1} at example ${i}: label ${t}, prediction ${p}`);
    }
    matrix[t][p]++;
  }
  return matrix;
}

/** Per-class accuracy from a confusion matrix: the diagonal over each row's sum. */
export function perClassAccuracy(confusion: number[][], names: readonly string[] = FASHION_MNIST_CLASSES): ClassAccuracy[] {
  return confusion.map((row, label) => {
    const count = row.reduce((a, b) => a + b, 0);
    const correct = row[label];
    return { label, name: names[label] ?? String(label), count, correct, accuracy: count === 0 ? null : correct / count };
  });
}

/** Everything {@link Evaluation} holds, from labels and predictions. */
export function summarize(labels: ArrayLike<number>, predicted: ArrayLike<number>, names: readonly string[] = FASHION_MNIST_CLASSES): Evaluation {
  const confusion = confusionMatrix(labels, predicted, names.length);
  const perClass = perClassAccuracy(confusion, names);
  const correct = perClass.reduce((s, c) => s + c.correct, 0);
  return { count: labels.length, correct, accuracy: labels.length === 0 ? 0 : correct / labels.length, perClass, confusion };
}

/** Side of the square images `model` takes (its input is [null, side, side, channels]). */
export function modelInputSize(model: tfl.LayersModel): number {
  const shape = model.inputs[0].shape; // [null, H, W, C]
  const [, h, w] = shape;
  if (shape.length !== 4 || typeof h !== 'number' || h !== w) {
    throw new ConfigError(`the model takes inputs of shape [${shape.join(', ')}], not square images [N, H, W, C]`);
  }
  return h;
}

/**
 * Evaluates `model` (inference mode) on `split`: images resized to the model's input side,
 * `batchSize` per forward pass.
 */
export function evaluateModel(
  model: tfl.LayersModel, split: FashionMnistSplit, options: { batchSize?: number; names?: readonly string[] } = {},
): Evaluation {
  const names = options.names ?? FASHION_MNIST_CLASSES;
  const outputs = model.outputs[0].shape; // [null, classes]
  if (outputs.length !== 2 || outputs[1] !== names.length) {
    throw new ConfigError(`the model has outputs of shape [${outputs.map(String).join(', ')}] but there are ${names.length} classes; ` +
      'evaluate a model trained on Fashion-MNIST');
  }
  const channels = model.inputs[0].shape[3];
  if (channels !== 1) {
    throw new ConfigError(`the model takes ${channels}-channel images, but Fashion-MNIST's are grey (1 channel); ` +
      'evaluate a model trained on Fashion-MNIST');
  }
  const predicted = predict(model, split, modelInputSize(model), split.count, options.batchSize ?? 256);
  const evaluation = summarize(split.labels.subarray(0, split.count), predicted, names);
  return { ...evaluation, constantOutput: ignoresInput(model, split, options.batchSize ?? 256) };
}

/** Whether `model` scores the first batch (at least two images) of `split` identically. */
function ignoresInput(model: tfl.LayersModel, split: FashionMnistSplit, batchSize: number): boolean {
  if (split.count < 2) return false;
  const first = firstBatch(split, Math.max(2, batchSize), modelInputSize(model))!;
  const spread = tf.tidy(() => logitSpread(logitsOf(model, first.xs)));
  const flat = spread.dataSync()[0] === 0;
  tf.dispose([spread, first.xs, first.ys]);
  return flat;
}

/** The warning a dead model's evaluation carries (its fields said in each front end's words). */
export const CONSTANT_OUTPUT_WARNING = new UserError((_, nameOf) => 'this model gives every image the same scores: its output ' +
  'ignores the input (a dead network), so its accuracy is that of always guessing one class; train it again (see ' +
  `${nameOf('classBlockBias')}, ${nameOf('warmupSteps')}, ${nameOf('init')} he)`);

/** Two classes the model mixes up, in one direction: `count` examples of `trueClass` predicted as `predicted`. */
export interface Confusion {
  trueClass: string;
  predicted: string;
  count: number;
  /** count / examples of `trueClass`. */
  share: number;
}

/** The `k` largest off-diagonal cells of a confusion matrix, largest first (ties: row, then column order). */
export function mostConfused(confusion: number[][], k = 3, names: readonly string[] = FASHION_MNIST_CLASSES): Confusion[] {
  const cells: Confusion[] = [];
  confusion.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, p) => {
      if (p !== t && count > 0) cells.push({ trueClass: names[t] ?? String(t), predicted: names[p] ?? String(p), count, share: count / total });
    });
  });
  return cells.sort((a, b) => b.count - a.count).slice(0, k);
}

/** "shirt taken for t-shirt 112 times (11% of shirts)", for the text under a confusion matrix. */
export function describeConfusion(c: Confusion): string {
  return `${c.trueClass} taken for ${c.predicted} ${c.count} time${c.count === 1 ? '' : 's'} (${Math.round(c.share * 100)}% of ${c.trueClass} images)`;
}

/** The evaluation in words: accuracy, per-class table, confusion matrix (`names`: what a front end calls config fields). */
export function formatEvaluation(e: Evaluation, names: Record<string, string> = {}): string {
  const w = Math.max(...e.perClass.map((c) => c.name.length), 5);
  const pct = (x: number | null) => (x === null ? '—' : x.toFixed(3));
  const lines = [
    ...(e.constantOutput ? [`WARNING: ${CONSTANT_OUTPUT_WARNING.messageFor(names)}`, ''] : []),
    `accuracy ${e.accuracy.toFixed(3)} (${e.correct} of ${e.count})`,
    '',
    `${'class'.padEnd(w)}  ${'accuracy'.padStart(8)}  ${'correct'.padStart(7)}  ${'count'.padStart(6)}`,
    ...e.perClass.map((c) => `${c.name.padEnd(w)}  ${pct(c.accuracy).padStart(8)}  ${String(c.correct).padStart(7)}  ${String(c.count).padStart(6)}`),
    '',
    'confusion matrix (rows: true class, columns: predicted class)',
  ];
  const cell = Math.max(4, ...e.confusion.flat().map((n) => String(n).length + 1));
  lines.push(`${''.padEnd(w)}  ${e.perClass.map((c) => String(c.label).padStart(cell)).join('')}`);
  e.confusion.forEach((row, t) => {
    lines.push(`${`${t} ${e.perClass[t].name}`.padEnd(w + 2).slice(0, w + 2)}${row.map((n) => String(n).padStart(cell)).join('')}`);
  });
  return `${lines.join('\n')}\n`;
}
