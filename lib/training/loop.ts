/**
 * The training loop: minibatch SGD (or Adam) on softmax cross-entropy, as the chapter trains
 * NiN, one epoch after another, with the health checks after every step and an evaluation
 * after every epoch.
 *
 * It is the engine under a training run (lib/training/run.ts), which resolves the configs,
 * makes or restores the optimizer and saves checkpoints: the loop takes all of them ready and
 * knows nothing of files, plots or terminals. It reports through a view's callbacks and
 * returns the history. Every tensor a step creates is released before the next one (tests
 * check `tf.memory().numTensors`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { batches, FASHION_MNIST_CLASSES, FashionMnistSplit, firstBatch, numBatches } from '../core/fashionMnist';
import { ConfigError, UserError } from '../core/validate';
import { deriveSeed } from '../core/random';
import type { TrainConfig } from '../core/trainConfig';
import { learningRateAt, NinOptimizer, optimizerKind } from '../core/optimizers';
import { countCorrect, evaluateAccuracy } from '../core/evaluate';
import { absSum, HealthMonitor, logitSpread, StepPosition, StepVitals } from '../core/health';
import { liftClassBlock } from '../core/classBlockLift';
import {
  BatchInfo, epochStart, EpochResult, PartialEpoch, TrainHistory, TrainProgress,
} from '../core/history';
import { trainingForward } from '../kernels/fusedTraining';

/** What a training run shows as it goes: every callback optional, any may be async (a notebook redrawing a plot). */
export interface TrainingView {
  /** After every training step. */
  onBatchEnd?: (info: BatchInfo) => void | Promise<void>;
  /** After each epoch's evaluation. */
  onEpochEnd?: (result: EpochResult, history: TrainHistory) => void | Promise<void>;
  /**
   * Something the user should know that does not stop training (a class whose channel died).
   * Its fields are data: `warning.messageFor(names)` says it in a front end's words.
   */
  onWarning?: (warning: UserError) => void;
}

export interface TrainData {
  train: FashionMnistSplit;
  test: FashionMnistSplit;
}

/**
 * Mean softmax cross-entropy of integer labels `ys` [N] against `logits` [N, classes], with
 * the targets smoothed by `labelSmoothing` (see TrainConfig.labelSmoothing).
 */
export function crossEntropy(logits: tf.Tensor2D, ys: tf.Tensor1D, labelSmoothing = 0): tf.Scalar {
  return tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(ys, logits.shape[1]), logits, undefined, labelSmoothing) as tf.Scalar);
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
  const pieces = stepInPieces(model, optimizer, xs, ys, microBatchSize, stepSeed);
  for (;;) {
    const next = pieces.next();
    if (next.done) return next.value;
  }
}

/**
 * {@link sgdStep}, letting timers and signal handlers run between its pieces: a step over a
 * batch as large as the training set takes minutes. When `signal` is aborted between two
 * pieces, the step is dropped (nothing applied, nothing left behind) and undefined returned.
 */
async function stoppableStep(
  model: tfl.LayersModel, optimizer: tf.Optimizer, xs: tf.Tensor4D, ys: tf.Tensor1D,
  how: { microBatchSize: number; seed: StepSeed; labelSmoothing: number; signal?: AbortSignal },
): Promise<StepResult | undefined> {
  const pieces = stepInPieces(model, optimizer, xs, ys, how.microBatchSize, how.seed, how.labelSmoothing);
  for (;;) {
    const next = pieces.next();
    if (next.done) return next.value;
    await turnEventLoop();
    if (how.signal?.aborted) {
      pieces.return(undefined as never); // runs its finally: the gradients so far are freed
      return undefined;
    }
  }
}

/** The step itself: yields after every piece but the last (see {@link sgdStep}); stopped early, it frees its gradients. */
function* stepInPieces(
  model: tfl.LayersModel, optimizer: tf.Optimizer, xs: tf.Tensor4D, ys: tf.Tensor1D, microBatchSize: number,
  stepSeed?: StepSeed, labelSmoothing = 0,
): Generator<void, StepResult, void> {
  const n = xs.shape[0];
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const dropouts = stepSeed === undefined ? [] : dropoutLayers(model);
  const sum = { loss: 0, correct: 0, spread: 0, grads: undefined as tf.NamedTensorMap | undefined };
  try {
    for (let start = 0, p = 0; start < n; start += microBatchSize, p++) {
      if (p > 0) yield;
      const size = Math.min(microBatchSize, n - start);
      if (stepSeed !== undefined) {
        const seed = deriveSeed(stepSeed.seed, stepSeed.epoch, stepSeed.step, p);
        for (const layer of dropouts) layer.seed = seed;
      }
      try {
        addPiece(sum, pieceGradients(model, variables, xs, ys, { start, size, labelSmoothing }));
      } finally {
        for (const layer of dropouts) layer.seed = undefined;
      }
    }
    const gradAbsSum = absSum(Object.values(sum.grads!));
    if (Number.isFinite(gradAbsSum)) optimizer.applyGradients(sum.grads!);
    return { loss: sum.loss, correct: sum.correct, logitSpread: sum.spread, spreadImages: Math.min(microBatchSize, n), gradAbsSum };
  } finally {
    if (sum.grads) tf.dispose(sum.grads);
  }
}

/** The loss (weighted by the piece's share of the batch), its counts, and the gradients of examples start..start+size. */
function pieceGradients(
  model: tfl.LayersModel, variables: tf.Variable[], xs: tf.Tensor4D, ys: tf.Tensor1D,
  { start, size, labelSmoothing }: { start: number; size: number; labelSmoothing: number },
): { value: tf.Scalar; grads: tf.NamedTensorMap; right: tf.Scalar; spread: tf.Scalar } {
  const n = xs.shape[0];
  let right: tf.Scalar | undefined;
  let spread: tf.Scalar | undefined;
  const piece = tf.tidy(() => {
    const xb = size === n ? xs : tf.slice(xs, [start, 0, 0, 0], [size, -1, -1, -1]); // [b, H, W, C]
    const yb = size === n ? ys : tf.slice(ys, [start], [size]);
    return tf.variableGrads(() => {
      const logits = trainingForward(model, xb) as tf.Tensor2D; // [b, classes]
      right = tf.keep(countCorrect(logits, yb));
      spread = tf.keep(logitSpread(logits));
      return tf.mul(crossEntropy(logits, yb, labelSmoothing), size / n) as tf.Scalar;
    }, variables);
  });
  return { ...piece, right: right!, spread: spread! };
}

/** Adds a piece's numbers and gradients to the step's sums, freeing the piece. */
function addPiece(
  sum: { loss: number; correct: number; spread: number; grads?: tf.NamedTensorMap },
  piece: ReturnType<typeof pieceGradients>,
): void {
  sum.loss += piece.value.dataSync()[0];
  sum.correct += piece.right.dataSync()[0];
  sum.spread = Math.max(sum.spread, piece.spread.dataSync()[0]);
  tf.dispose([piece.value, piece.right, piece.spread]);
  if (sum.grads === undefined) {
    sum.grads = piece.grads;
    return;
  }
  for (const name of Object.keys(sum.grads)) {
    const added = tf.add(sum.grads[name], piece.grads[name]);
    tf.dispose([sum.grads[name], piece.grads[name]]);
    sum.grads[name] = added;
  }
}

/** Run control for {@link trainLoop}: where to start, and stopping from outside (Ctrl-C). */
export interface LoopOptions {
  /**
   * The optimizer to step, from `makeOptimizer` or restored from a checkpoint; the caller
   * owns it (the loop leaves it alive, with its state). Its step counter must be where the run
   * starts: a resumed run with momentum or Adam continues only with its restored state.
   */
  optimizer: NinOptimizer;
  /** Continue a run from this point (the model passed in must hold that point's weights). */
  resume?: TrainProgress;
  /** Watches every step; the caller makes it (its config says when a network counts as dead). */
  health: HealthMonitor;
  /**
   * Checked after every step and before every epoch: once aborted, the loop stops there and
   * resolves with `history.interrupted` saying where. An epoch whose last step has run is
   * still finished (evaluated and reported) first.
   */
  signal?: AbortSignal;
}

/**
 * Trains `model` in place and returns the per-epoch history. `config` is resolved (every
 * field checked) and the model built for `config.resize` pixels.
 *
 * Deterministic for a given seed, data and backend: the epoch order and every dropout mask
 * are functions of (seed, epoch, step), so a run resumed from a checkpoint (`resume`, with
 * the checkpoint's weights in `model` and its optimizer) computes the same steps as one never
 * stopped. The learning rate of every step is set here, from the config's schedule.
 */
export async function trainLoop(
  model: tfl.LayersModel, data: TrainData, config: TrainConfig, view: TrainingView, options: LoopOptions,
): Promise<TrainHistory> {
  const loop = new Loop(model, data, config, view, options);
  return loop.run();
}

/** A partly dead network is reported once per class, when it has stayed silent at two epoch ends in a row. */
class SilentClasses {
  private before: number[] = [];
  private readonly warned = new Set<number>();

  /** The warning for the classes silent now and at the last epoch end, not yet reported; undefined when none. */
  update(silent: number[], epoch: number): UserError | undefined {
    const lasting = silent.filter((k) => this.before.includes(k) && !this.warned.has(k));
    this.before = silent;
    lasting.forEach((k) => this.warned.add(k));
    return lasting.length > 0 ? silentClassesWarning(lasting, epoch) : undefined;
  }
}

/** One run of the loop: the state its epochs share. */
class Loop {
  private readonly steps: number;
  private readonly history: TrainHistory;
  private readonly microBatchSize: number;
  private readonly silent = new SilentClasses();

  constructor(
    private readonly model: tfl.LayersModel, private readonly data: TrainData, private readonly config: TrainConfig,
    private readonly view: TrainingView, private readonly options: LoopOptions,
  ) {
    checkInputSize(model, config.resize);
    this.steps = numBatches(data.train.count, config.batchSize);
    const resume = options.resume ?? { epochs: [] };
    checkProgress(resume, config, this.steps);
    checkOptimizerPosition(options.optimizer, config, resume, this.steps);
    this.history = { config, epochs: [...resume.epochs] };
    this.microBatchSize = config.microBatchSize ?? autoMicroBatchSize(model, config.batchSize);
  }

  async run(): Promise<TrainHistory> {
    const resume = this.options.resume;
    const first = (resume?.epochs.length ?? 0) + 1;
    if (first === 1 && !resume?.partial?.steps) {
      liftClassBlock(this.model, this.data.train, { resize: this.config.resize, margin: this.config.classBlockMargin });
    }
    for (let epoch = first; epoch <= this.config.numEpochs; epoch++) {
      const start = resume?.partial?.epoch === epoch ? resume.partial : epochStart(epoch);
      if (this.options.signal?.aborted) {
        this.history.interrupted = start;
        break;
      }
      const started = performance.now();
      const done = await this.trainEpoch(start);
      if (done.steps < this.steps) {
        this.history.interrupted = done;
        break;
      }
      await this.finishEpoch(done, start.trainSeconds + (performance.now() - started) / 1000);
    }
    return this.history;
  }

  /** The steps of one epoch from `start`; returns the epoch's sums, stopped early when the signal says so. */
  private async trainEpoch(start: PartialEpoch): Promise<PartialEpoch & { last: StepVitals }> {
    const { config, options, view } = this;
    const at = { ...start, last: { loss: NaN, logitSpread: 0, gradAbsSum: 0 } as StepVitals };
    let batch = 0;
    let last = performance.now();
    const order = { batchSize: config.batchSize, resize: config.resize, shuffle: true, seed: config.seed, epoch: start.epoch };
    for (const { xs, ys } of batches(this.data.train, order)) {
      if (batch < start.steps) { // resuming mid-epoch: skip the steps already done
        tf.dispose([xs, ys]);
        batch++;
        last = performance.now();
        continue;
      }
      const n = xs.shape[0];
      options.optimizer.setLearningRate(learningRateAt(config, (start.epoch - 1) * this.steps + batch, this.steps));
      let result: StepResult | undefined;
      try {
        const seed = { seed: config.seed, epoch: start.epoch, step: batch };
        result = await stoppableStep(this.model, options.optimizer, xs, ys,
          { microBatchSize: this.microBatchSize, seed, labelSmoothing: config.labelSmoothing, signal: options.signal });
      } finally {
        tf.dispose([xs, ys]);
      }
      if (result === undefined) break; // stopped inside the step: it was not applied
      options.health.check(result, { epoch: start.epoch, step: batch + 1, steps: this.steps });
      Object.assign(at, { lossSum: at.lossSum + result.loss * n, correct: at.correct + result.correct, seen: at.seen + n, last: result });
      await view.onBatchEnd?.({ epoch: start.epoch, batch, numBatches: this.steps, loss: result.loss, acc: result.correct / n });
      batch++;
      at.steps = batch;
      at.trainSeconds += (performance.now() - last) / 1000;
      last = performance.now();
      if (options.signal !== undefined) {
        await turnEventLoop();
        if (options.signal.aborted && batch < this.steps) break;
      }
    }
    return at;
  }

  /** An epoch's end: the health check on the first test batch, the silent classes, the evaluation, the report. */
  private async finishEpoch(done: PartialEpoch & { last: StepVitals }, seconds: number): Promise<void> {
    const { config, data, view } = this;
    const silent = settleEpochEnd(this.options.health, data.test, config, done.last, { epoch: done.epoch, step: this.steps, steps: this.steps });
    const warning = this.silent.update(silent, done.epoch);
    if (warning) view.onWarning?.(warning);
    const testAcc = evaluateAccuracy(this.model, data.test, { batchSize: config.batchSize, resize: config.resize });
    const result: EpochResult = {
      epoch: done.epoch, trainLoss: done.lossSum / done.seen, trainAcc: done.correct / done.seen, testAcc,
      examplesPerSec: done.seen / done.trainSeconds, seconds, silentClasses: silent,
    };
    this.history.epochs.push(result);
    await view.onEpochEnd?.(result, this.history);
  }
}

function checkInputSize(model: tfl.LayersModel, resize: number): void {
  const shape = model.inputs[0].shape; // [null, H, W, C]
  if (shape[1] !== resize || shape[2] !== resize) {
    throw new ConfigError((n) => `the model takes ${shape[1]}×${shape[2]} images but ${n} is ${resize}; ` +
      `build it with nin({ inputSize: ${resize} })`, 'resize');
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

/**
 * The optimizer's step counter must be where the run starts: a fresh optimizer at a resumed
 * position would lose momentum's velocity or Adam's averages (and Adam's bias correction).
 */
function checkOptimizerPosition(optimizer: NinOptimizer, config: TrainConfig, resume: TrainProgress, steps: number): void {
  const position = resume.epochs.length * steps + (resume.partial?.steps ?? 0);
  if (optimizer.iterations === position) return;
  throw new ConfigError(`resume: a run with ${optimizerKind(config)} continues only with its saved state, but the optimizer ` +
    `has taken ${optimizer.iterations} steps where the run resumes at step ${position}; continue with the optimizer ` +
    'restored from the checkpoint');
}

/**
 * Lets timers, signal handlers and messages run (a step's `await`s alone never reach the event
 * loop). Node's setImmediate where there is one (a few µs); in a browser or a Web Worker, which
 * lack it, one message through a fresh MessageChannel (a task of its own, ~40 µs in Node;
 * setTimeout(0) would wait ~1 ms in Node and 4 ms once browsers clamp it).
 */
function turnEventLoop(): Promise<void> {
  const { setImmediate: immediate } = globalThis as { setImmediate?: (callback: () => void) => unknown };
  return new Promise((resolve) => {
    if (typeof immediate === 'function') {
      immediate(resolve);
      return;
    }
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close(); // an open port would keep the channel (and, in Node, the process) alive
      resolve();
    };
    port2.postMessage(undefined);
  });
}

/**
 * The health check of an epoch's end, on the first test batch (see
 * {@link HealthMonitor.checkEpochEnd}): throws for a dead network; returns the silent classes.
 */
function settleEpochEnd(health: HealthMonitor, test: FashionMnistSplit, config: TrainConfig, vitals: StepVitals, at: StepPosition): number[] {
  const first = firstBatch(test, config.batchSize, config.resize);
  if (first === undefined) return [];
  try {
    return health.checkEpochEnd(first.xs, vitals, at);
  } finally {
    tf.dispose([first.xs, first.ys]);
  }
}

/** "after epochs 1 and 2, class 6 (shirt) scores 0 for every image of the first test batch …". */
function silentClassesWarning(classes: number[], epoch: number): UserError {
  const named = classes.map((k) => `${k}${FASHION_MNIST_CLASSES[k] ? ` (${FASHION_MNIST_CLASSES[k]})` : ''}`);
  const one = classes.length === 1;
  return new UserError((_, nameOf) => `after epochs ${epoch - 1} and ${epoch}, ${one ? `class ${named[0]} scores` : `classes ${named.join(', ')} score`} 0 for ` +
    `every image of the first test batch: ${one ? 'its channel' : 'their channels'} in the last block ${one ? 'is' : 'are'} silent (below ` +
    `zero for every input, so no gradient reaches ${one ? 'it' : 'them'}), and the network cannot predict ${one ? 'it' : 'them'} ` +
    `unless the layers below revive ${one ? 'it' : 'them'}: a partly dead network (expect a lower accuracy; see ` +
    `${nameOf('classBlockBias')}, ${nameOf('warmupSteps')}, ${nameOf('init')} he)`);
}
