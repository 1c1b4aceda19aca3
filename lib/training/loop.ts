/**
 * Training and evaluation: minibatch SGD on softmax cross-entropy, as the chapter trains NiN
 * (or Adam, for the tuned CPU profile).
 *
 * `train` knows nothing of plots or terminals: it reports through callbacks and returns the
 * history. Every tensor a step creates is released before the next one (tests check
 * `tf.memory().numTensors`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { batches, FASHION_MNIST_CLASSES, FashionMnistSplit, numBatches } from '../core/fashionMnist';
import { ConfigError } from '../core/validate';
import { deriveSeed } from '../core/random';
import { resolveTrainConfig, TrainConfig } from '../core/trainConfig';
import { disposeOptimizer, hasOptimizerState, learningRateAt, makeOptimizer, optimizerKind, setLearningRate } from '../core/optimizers';
import { countCorrect, evaluateAccuracy } from '../core/evaluate';
import { absSum, HealthConfig, HealthMonitor, logitSpread, StepPosition, StepVitals } from '../core/health';
import { liftClassBlock } from '../core/classBlockLift';
import { trainingForward } from '../kernels/fusedTraining';

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
  /**
   * Classes that scored 0 for every image of the first test batch at the epoch's end: their
   * channels of the last block are silent (see the health checks). Absent in older checkpoints.
   */
  silentClasses?: number[];
}

/**
 * How far into an epoch training got: what a run stopped mid-epoch saves, and what a resumed
 * run starts from. Sums are kept (not means) so the resumed epoch's result is the same number
 * an uninterrupted epoch would have reported.
 */
export interface PartialEpoch {
  /** The epoch in progress, 1-based. */
  epoch: number;
  /** Steps of it already done (0 = stopped at the epoch's start). */
  steps: number;
  /** Sum over those steps of (mean batch loss × batch size). */
  lossSum: number;
  /** Examples classified correctly in those steps. */
  correct: number;
  /** Examples seen in those steps. */
  seen: number;
  /** Seconds spent in those steps (for `examplesPerSec`). */
  trainSeconds: number;
}

/** What {@link train} returns: the config it ran with and one result per completed epoch. */
export interface TrainHistory {
  config: TrainConfig;
  /** Completed epochs, including those of a run this one resumed. */
  epochs: EpochResult[];
  /** Set when `signal` stopped training before `numEpochs`: where it stopped. */
  interrupted?: PartialEpoch;
}

/** Where a resumed run continues: the state a checkpoint holds besides the weights. */
export interface TrainProgress {
  /** Results of the completed epochs 1..k; training continues with epoch k + 1. */
  epochs: EpochResult[];
  /** Steps of epoch k + 1 already done, when the run was stopped mid-epoch. */
  partial?: PartialEpoch;
}

/** Run control for {@link train}: resuming, the optimizer, and stopping from outside (Ctrl-C). */
export interface TrainRunOptions {
  /** Continue a run from this point (the model passed in must hold that point's weights). */
  resume?: TrainProgress;
  /**
   * The optimizer to step, from {@link makeOptimizer} (or restored from a checkpoint). The
   * caller owns it: `train` leaves it alive, so its state can be saved along with the model,
   * and the caller disposes it ({@link disposeOptimizer}). Without one, `train` makes its own
   * and disposes it at the end. Resuming a run with momentum or Adam needs the restored
   * optimizer: its velocity or moving averages are part of where the run was.
   */
  optimizer?: tf.Optimizer;
  /** When the run counts its network as dead (see {@link HealthMonitor}). */
  health?: Partial<HealthConfig>;
  /**
   * Checked after every step and before every epoch: once aborted, `train` stops there and
   * resolves with `history.interrupted` saying where. An epoch whose last step has run is
   * still finished (evaluated and reported) first.
   */
  signal?: AbortSignal;
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
  /** Something the user should know that does not stop training (a class whose channel died). */
  onWarning?: (text: string) => void;
}

export interface TrainData {
  train: FashionMnistSplit;
  test: FashionMnistSplit;
}

/** Mean softmax cross-entropy of integer labels `ys` [N] against `logits` [N, classes]. */
export function crossEntropy(logits: tf.Tensor2D, ys: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(ys, logits.shape[1]), logits) as tf.Scalar);
}

/** Activation memory the wasm backend may spend on one forward/backward pass. */
const WASM_ACTIVATION_BUDGET_BYTES = 1 << 30;

/**
 * Memory one example takes in a training pass: every layer's output, kept for the backward
 * pass, plus about as much again for their gradients, and its input image.
 */
export function trainingBytesPerExample(model: tfl.LayersModel): number {
  const floats = model.layers.reduce((sum, layer) => {
    const shape = (layer.outputShape as (number | null)[]).slice(1) as number[]; // drop the batch axis
    return sum + shape.reduce((a, b) => a * b, 1);
  }, 0);
  const input = (model.inputs[0].shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  return floats * 4 * 3 + input * 4;
}

/**
 * Refuses an image size at which not even one example can be trained within the memory a
 * pass may use (1 GiB, what the wasm heap allows), naming the largest size that fits.
 */
export function checkTrainingFits(model: tfl.LayersModel): void {
  const bytes = trainingBytesPerExample(model);
  if (bytes <= WASM_ACTIVATION_BUDGET_BYTES) return;
  const side = model.inputs[0].shape[1] as number;
  const fits = Math.floor(side * Math.sqrt(WASM_ACTIVATION_BUDGET_BYTES / bytes));
  throw new ConfigError((n) => `${n} ${side} needs about ${(bytes / 2 ** 30).toFixed(1)} GB per training image (each ` +
    `layer's output is kept for the backward pass), more than the 1 GB a pass may use; use images of at most about ${fits} px`,
  'resize');
}

/**
 * Examples per forward/backward pass for `batchSize` on the active backend: the whole batch,
 * except on wasm, where the layers' outputs (kept for the backward pass, plus about as much
 * again for their gradients) must fit the budget. Batches are split evenly.
 */
export function autoMicroBatchSize(model: tfl.LayersModel, batchSize: number): number {
  if (tf.getBackend() !== 'wasm') return batchSize;
  const fits = Math.max(1, Math.floor(WASM_ACTIVATION_BUDGET_BYTES / trainingBytesPerExample(model)));
  if (fits >= batchSize) return batchSize;
  return Math.ceil(batchSize / Math.ceil(batchSize / fits));
}

/** What one SGD step measured: its loss and the vitals {@link HealthMonitor} checks. */
export interface StepResult extends StepVitals {
  /** Examples classified correctly (before the update). */
  correct: number;
}

/** Which step this is, so that its dropout masks can be drawn reproducibly. */
export interface StepSeed {
  /** The run's seed. */
  seed: number;
  /** 1-based epoch. */
  epoch: number;
  /** 0-based step within the epoch. */
  step: number;
}

/** A layer whose masks come from `tf.dropout(x, rate, noiseShape, this.seed)`. */
type SeededLayer = tfl.layers.Layer & { seed?: number };

/** The model's dropout layers (tfjs-layers' `Dropout` and its spatial variants). */
function dropoutLayers(model: tfl.LayersModel): SeededLayer[] {
  return model.layers.filter((l) => /Dropout/.test(l.getClassName())) as SeededLayer[];
}

/**
 * One SGD step of `model` on a batch (xs [B, H, W, C], ys [B] class indices): forward with
 * dropout, backward, update. With `microBatchSize < B` the batch goes through in pieces and
 * the pieces' gradients (each weighted by its share of the batch) are summed first, so the
 * update is that of the whole batch. Gradients holding NaN or ∞ are not applied (the
 * result's `gradAbsSum` says so). Leaves no tensors behind.
 *
 * With `stepSeed`, the dropout masks of piece p are drawn from
 * `deriveSeed(seed, epoch, step, p)`: the same step always drops the same units (a fixed
 * layer seed would repeat one mask every step). The layers' `seed` is set only for the
 * forward pass and cleared afterwards, so saved models carry none. Without it, masks are
 * fresh random draws.
 */
export function sgdStep(
  model: tfl.LayersModel, optimizer: tf.Optimizer, xs: tf.Tensor4D, ys: tf.Tensor1D, microBatchSize: number,
  stepSeed?: StepSeed,
): StepResult {
  const n = xs.shape[0];
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const dropouts = stepSeed === undefined ? [] : dropoutLayers(model);
  let grads: tf.NamedTensorMap | undefined;
  let loss = 0;
  let correct = 0;
  let spread = 0;
  for (let start = 0, p = 0; start < n; start += microBatchSize, p++) {
    const size = Math.min(microBatchSize, n - start);
    let rightT: tf.Scalar | undefined;
    let spreadT: tf.Scalar | undefined;
    if (stepSeed !== undefined) {
      const seed = deriveSeed(stepSeed.seed, stepSeed.epoch, stepSeed.step, p);
      for (const layer of dropouts) layer.seed = seed;
    }
    let piece: { value: tf.Scalar; grads: tf.NamedTensorMap };
    try {
      piece = tf.tidy(() => {
        const xb = size === n ? xs : tf.slice(xs, [start, 0, 0, 0], [size, -1, -1, -1]); // [b, H, W, C]
        const yb = size === n ? ys : tf.slice(ys, [start], [size]);
        return tf.variableGrads(() => {
          const logits = trainingForward(model, xb) as tf.Tensor2D; // [b, classes]
          rightT = tf.keep(countCorrect(logits, yb));
          spreadT = tf.keep(logitSpread(logits));
          return tf.mul(crossEntropy(logits, yb), size / n) as tf.Scalar;
        }, variables);
      });
    } finally {
      for (const layer of dropouts) layer.seed = undefined;
    }
    loss += piece.value.dataSync()[0];
    correct += rightT!.dataSync()[0];
    spread = Math.max(spread, spreadT!.dataSync()[0]);
    tf.dispose([piece.value, rightT!, spreadT!]);
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
  const gradAbsSum = absSum(Object.values(grads!));
  if (Number.isFinite(gradAbsSum)) optimizer.applyGradients(grads!);
  tf.dispose(grads!);
  return { loss, correct, logitSpread: spread, gradAbsSum };
}

function checkInputSize(model: tfl.LayersModel, resize: number): void {
  const shape = model.inputs[0].shape; // [null, H, W, C]
  if (shape[1] !== resize || shape[2] !== resize) {
    throw new ConfigError(`the model takes ${shape[1]}×${shape[2]} images but resize is ${resize}; ` +
      `build it with nin({ inputSize: ${resize} })`);
  }
}

/** Checks that a resume point fits the run: consecutive epochs, a partial epoch right after them. */
function checkProgress(progress: TrainProgress, config: TrainConfig, steps: number): void {
  const done = progress.epochs.length;
  progress.epochs.forEach((e, i) => {
    if (e.epoch !== i + 1) throw new ConfigError(`resume: epoch results must be 1..${done} in order, found epoch ${e.epoch} at position ${i + 1}`);
  });
  if (done > config.numEpochs) {
    throw new ConfigError(`resume: ${done} epochs are already done but numEpochs is ${config.numEpochs}`);
  }
  const p = progress.partial;
  if (p !== undefined && (p.epoch !== done + 1 || !Number.isInteger(p.steps) || p.steps < 0 || p.steps >= steps)) {
    throw new ConfigError(`resume: the partial epoch must be epoch ${done + 1} with 0..${steps - 1} steps done, ` +
      `got epoch ${p.epoch} with ${p.steps}`);
  }
}

/** Lets timers and signal handlers run (a step's `await`s alone never reach the event loop). */
/** Lets timers and signal handlers run (a step's `await`s alone never reach the event loop). */
const turnEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Trains `model` in place with SGD and returns the per-epoch history. The model must have
 * been built for `config.resize` pixels.
 *
 * Deterministic for a given seed, data and backend: the epoch order and every dropout mask
 * are functions of (seed, epoch, step), so a run resumed from a checkpoint (`run.resume`, with
 * the checkpoint's weights in `model`) computes the same steps as one never stopped.
 */
export async function train(
  model: tfl.LayersModel, data: TrainData, partial: Partial<TrainConfig> = {}, callbacks: TrainCallbacks = {},
  run: TrainRunOptions = {},
): Promise<TrainHistory> {
  const config = resolveTrainConfig(partial);
  checkInputSize(model, config.resize);
  const steps = numBatches(data.train.count, config.batchSize);
  const resume: TrainProgress = run.resume ?? { epochs: [] };
  checkProgress(resume, config, steps);
  // Where the run starts, in steps; the optimizer's own step counter should agree.
  const iterations = resume.epochs.length * steps + (resume.partial?.steps ?? 0);
  const owned = run.optimizer === undefined;
  if (owned && hasOptimizerState(config) && iterations > 0) {
    throw new ConfigError(`resume: a run with ${optimizerKind(config)} continues only with its saved state; pass the ` +
      'optimizer restored from the checkpoint (loadCheckpoint gives it) as `optimizer`');
  }
  const optimizer = run.optimizer ?? makeOptimizer(config);
  if (iterations === 0) liftClassBlock(model, data.train, { resize: config.resize, margin: config.classBlockMargin });
  const history: TrainHistory = { config, epochs: [...resume.epochs] };
  const microBatchSize = config.microBatchSize ?? autoMicroBatchSize(model, config.batchSize);
  const { signal } = run;
  const health = new HealthMonitor(model, config.lr, run.health);
  let silentBefore: number[] = [];
  const warnedSilent = new Set<number>(); // a class is reported once, when it has stayed silent
  try {
    if (owned && iterations > 0) {
      // Plain SGD has no per-weight state; its step counter is restored for completeness.
      const iter = tf.scalar(iterations, 'int32');
      await optimizer.setWeights([{ name: 'iter', tensor: iter }]);
      iter.dispose();
    }
    setLearningRate(optimizer, learningRateAt(config, iterations, steps)); // the config's, whoever made it
    for (let epoch = resume.epochs.length + 1; epoch <= config.numEpochs; epoch++) {
      const done = resume.partial?.epoch === epoch ? resume.partial : undefined;
      if (signal?.aborted) {
        history.interrupted = done ?? { epoch, steps: 0, lossSum: 0, correct: 0, seen: 0, trainSeconds: 0 };
        break;
      }
      const start = performance.now();
      let lossSum = done?.lossSum ?? 0;
      let correct = done?.correct ?? 0;
      let seen = done?.seen ?? 0;
      let batch = 0;
      let lastVitals: StepVitals = { loss: NaN, logitSpread: 0, gradAbsSum: 0 };
      let stepSeconds = 0; // this process's time in the epoch's steps (batching and callbacks included)
      let last = performance.now();
      const order = { batchSize: config.batchSize, resize: config.resize, shuffle: true, seed: config.seed, epoch };
      for (const { xs, ys } of batches(data.train, order)) {
        if (done !== undefined && batch < done.steps) { // resuming mid-epoch: skip the steps already done
          tf.dispose([xs, ys]);
          batch++;
          last = performance.now();
          continue;
        }
        const n = xs.shape[0];
        if (config.lrSchedule !== 'constant' || config.warmupSteps > 0) {
          setLearningRate(optimizer, learningRateAt(config, (epoch - 1) * steps + batch, steps));
        }
        let result: StepResult;
        try {
          result = sgdStep(model, optimizer, xs, ys, microBatchSize, { seed: config.seed, epoch, step: batch });
        } finally {
          tf.dispose([xs, ys]);
        }
        health.check(result, { epoch, step: batch + 1, steps });
        lastVitals = result;
        const { loss, correct: right } = result;
        lossSum += loss * n;
        correct += right;
        seen += n;
        await callbacks.onBatchEnd?.({ epoch, batch, numBatches: steps, loss, acc: right / n });
        batch++;
        stepSeconds += (performance.now() - last) / 1000;
        last = performance.now();
        if (signal !== undefined) {
          await turnEventLoop();
          if (signal.aborted && batch < steps) {
            history.interrupted = { epoch, steps: batch, lossSum, correct, seen, trainSeconds: (done?.trainSeconds ?? 0) + stepSeconds };
            break;
          }
        }
      }
      if (history.interrupted) break;
      // Classes silent at two epoch ends in a row: early on, a class may be silent for a while and revive.
      const silent = settleEpochEnd(health, data.test, config, lastVitals, { epoch, step: steps, steps });
      const lasting = silent.filter((k) => silentBefore.includes(k) && !warnedSilent.has(k));
      if (lasting.length > 0) callbacks.onWarning?.(silentClassesWarning(lasting, epoch));
      lasting.forEach((k) => warnedSilent.add(k));
      silentBefore = silent;
      const trainSeconds = (done?.trainSeconds ?? 0) + stepSeconds;
      const testAcc = evaluateAccuracy(model, data.test, { batchSize: config.batchSize, resize: config.resize });
      const result: EpochResult = {
        epoch,
        trainLoss: lossSum / seen,
        trainAcc: correct / seen,
        testAcc,
        examplesPerSec: seen / trainSeconds,
        seconds: (done?.trainSeconds ?? 0) + (performance.now() - start) / 1000,
        silentClasses: silent,
      };
      history.epochs.push(result);
      await callbacks.onEpochEnd?.(result, history);
    }
  } finally {
    if (owned) disposeOptimizer(optimizer);
  }
  return history;
}

/** What a run ended with, as the chapter reports it: the last epoch's numbers and the mean speed. */
export interface FinalMetrics {
  loss: number;
  trainAcc: number;
  testAcc: number;
  /** Mean over the epochs of training examples per second. */
  examplesPerSec: number;
}

/** The final metrics of a history with at least one epoch. */
export function finalMetrics(history: Pick<TrainHistory, 'epochs'>): FinalMetrics {
  const epochs = history.epochs;
  if (epochs.length === 0) throw new ConfigError('no epoch has been completed yet, so there are no final metrics');
  const last = epochs[epochs.length - 1];
  return {
    loss: last.trainLoss, trainAcc: last.trainAcc, testAcc: last.testAcc,
    examplesPerSec: epochs.reduce((s, e) => s + e.examplesPerSec, 0) / epochs.length,
  };
}

/** The chapter's two summary lines: "loss 0.356, train acc 0.870, test acc 0.871" and the speed on `backend`. */
export function formatFinalMetrics(m: FinalMetrics, backend: string): string {
  return `loss ${m.loss.toFixed(3)}, train acc ${m.trainAcc.toFixed(3)}, test acc ${m.testAcc.toFixed(3)}\n` +
    `${m.examplesPerSec.toFixed(1)} examples/sec on ${backend}`;
}

/**
 * The health check of an epoch's end, on the first test batch (see
 * {@link HealthMonitor.checkEpochEnd}): throws for a dead network; returns the silent classes.
 */
function settleEpochEnd(health: HealthMonitor, test: FashionMnistSplit, config: TrainConfig, vitals: StepVitals, at: StepPosition): number[] {
  if (test.count === 0) return [];
  const first = batches(test, { batchSize: config.batchSize, resize: config.resize, shuffle: false, seed: 0, epoch: 0 }).next();
  if (first.done) return [];
  try {
    return health.checkEpochEnd(first.value.xs, vitals, at);
  } finally {
    tf.dispose([first.value.xs, first.value.ys]);
  }
}

/** "after epoch 2, class 6 (shirt) scores 0 for every image of the first test batch …". */
function silentClassesWarning(classes: number[], epoch: number): string {
  const named = classes.map((k) => `${k}${FASHION_MNIST_CLASSES[k] ? ` (${FASHION_MNIST_CLASSES[k]})` : ''}`);
  const one = classes.length === 1;
  return `after epochs ${epoch - 1} and ${epoch}, ${one ? `class ${named[0]} scores` : `classes ${named.join(', ')} score`} 0 for ` +
    `every image of the first test batch: ${one ? 'its channel' : 'their channels'} in the last block ${one ? 'is' : 'are'} silent (below ` +
    `zero for every input, so no gradient reaches ${one ? 'it' : 'them'}), and the network cannot predict ${one ? 'it' : 'them'} ` +
    `unless the layers below revive ${one ? 'it' : 'them'}: a partly dead network (expect a lower accuracy; see --class-block-bias, --warmup-steps, --init he)`;
}

