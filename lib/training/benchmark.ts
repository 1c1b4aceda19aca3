/**
 * Throughput of the chapter's NiN on random data, measured the way
 * the PyTorch reference script (Debian python3-torch) measures the same NiN, so the two can be compared as a ratio:
 * the same network, batch and input size; a training step is forward + backward + SGD
 * update; each figure is the median over `steps` timed steps after `warmup` untimed ones.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, positiveInt, withDefaults } from '../core/validate';
import type * as tfl from '@tensorflow/tfjs-layers';
import { checkInputSize, countFlops, countParams, logitsOf, nin } from '../core/model';
import { autoMicroBatchSize, checkTrainingFits, sgdStep } from './loop';
import { nativeConvLibrary, nativeConvolutionsActive, sgemmGflops } from '../kernels/native';
import { disposeOptimizer, makeOptimizer, UpdateRule } from '../core/optimizers';

export interface BenchConfig {
  /** Input side in pixels. @default 96 */
  resize: number;
  /** Images per step. @default 128 */
  batchSize: number;
  /** Timed steps per figure. @default 5 */
  steps: number;
  /** Untimed steps before them (1, as the reference script does). @default 1 */
  warmup: number;
}

export const BENCH_DEFAULTS: Readonly<BenchConfig> = Object.freeze({ resize: 96, batchSize: 128, steps: 5, warmup: 1 });

export function resolveBenchConfig(partial: Partial<BenchConfig> = {}): BenchConfig {
  const c = withDefaults('bench', partial, BENCH_DEFAULTS);
  checkInputSize('resize', c.resize);
  positiveInt('batchSize', c.batchSize);
  positiveInt('steps', c.steps);
  positiveInt('warmup', c.warmup, 0);
  return c;
}

/**
 * Tensor memory a forward pass may use: half of the wasm heap's 4 GB, leaving the rest to the
 * weights, the kernels' scratch and the heap's fragmentation.
 */
const FORWARD_BUDGET_BYTES = 2 ** 31;

/**
 * Memory one example takes at the fullest point of a forward pass (prediction, no gradient):
 * its input image, and the largest of the layers' input plus output. A prediction lets go of
 * each layer's input once the layer has run (NiN at 500 px, batch 128, whose layer outputs add
 * up to 4.4 GB, predicts within the 4 GB heap), so they are not all held at once as in training
 * ({@link trainingBytesPerExample} in ./loop, which counts the layers' outputs the same way).
 */
export function forwardBytesPerExample(model: tfl.LayersModel): number {
  const size = (shape: readonly (number | null)[]) => (shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  const input = size(model.inputs[0].shape);
  let previous = input;
  let peak = 0;
  for (const layer of model.layers) {
    const out = size(layer.outputShape as (number | null)[]);
    peak = Math.max(peak, previous + out);
    previous = out;
  }
  return (input + peak) * 4;
}

const gb = (bytes: number) => (bytes / 2 ** 30).toFixed(1);

/**
 * The most images one forward pass of `model` may take within the memory a pass may use (2
 * GB); a ConfigError about field `resize` when not even one image fits, naming the largest
 * size that does.
 */
export function forwardBatchLimit(model: tfl.LayersModel): number {
  const bytes = forwardBytesPerExample(model);
  const fits = Math.floor(FORWARD_BUDGET_BYTES / bytes);
  if (fits >= 1) return fits;
  const side = model.inputs[0].shape[1] as number;
  const px = Math.floor(side * Math.sqrt(FORWARD_BUDGET_BYTES / bytes));
  throw new ConfigError((n) => `${n} ${side} needs about ${gb(bytes)} GB per image for a forward pass, more than the ` +
    `${gb(FORWARD_BUDGET_BYTES)} GB a pass may use; use images of at most about ${px} px`, 'resize');
}

/**
 * Refuses a forward pass of `batchSize` images that would not fit (field `batchSize`, naming
 * the most that do), or an image size at which not even one does (field `resize`), before
 * anything is allocated: past the wasm heap a pass fails deep inside with "memory access out
 * of bounds".
 */
export function checkForwardFits(model: tfl.LayersModel, batchSize: number): void {
  const fits = forwardBatchLimit(model);
  if (batchSize <= fits) return;
  const side = model.inputs[0].shape[1] as number;
  const bytes = forwardBytesPerExample(model) * batchSize;
  throw new ConfigError((n) => `${n} ${batchSize} needs about ${gb(bytes)} GB for one forward pass at ${side} px, more than ` +
    `the ${gb(FORWARD_BUDGET_BYTES)} GB a pass may use; use ${n} ${fits} or less`, 'batchSize');
}

/**
 * Refuses a benchmark that cannot run, in one line naming the value, before the slow parts:
 * an image size at which not even one example can be trained (`resize`), or a batch whose
 * forward pass (taken whole, as the reference script does) would not fit (`batchSize`).
 * Call with a backend selected (it builds the model).
 */
export function checkBenchFits(partial: Partial<BenchConfig> = {}): BenchConfig {
  const c = resolveBenchConfig(partial);
  const model = nin({ inputSize: c.resize, seed: 0 });
  try {
    checkFits(model, c);
  } finally {
    model.dispose();
  }
  return c;
}

function checkFits(model: tfl.LayersModel, c: BenchConfig): void {
  checkTrainingFits(model);
  checkForwardFits(model, c.batchSize);
}

/** Field names follow the reference script's JSON, so the two lines compare key by key. */
export interface BenchResult {
  backend: string;
  resize: number;
  batch_size: number;
  forward_img_s: number;
  train_img_s: number;
  /** Peak resident memory of this process so far (the whole process, not just tensors). */
  peak_rss_mb: number;
  /**
   * FLOP rate of training, counted as three forward passes per image of direct convolutions
   * (GFLOP/s). Winograd convolutions do fewer multiplications, so where they run this is an
   * effective rate: the direct convolutions' rate that would take as long.
   */
  gflops: number;
  /** FLOP rate of the forward pass (GFLOP/s). */
  forward_gflops: number;
  /**
   * The machine's own sgemm rate, measured in the same run (OpenBLAS, 2048², every thread),
   * GFLOP/s: `gflops / peak_gflops` is how close training comes to it. Null without the
   * native addon.
   */
  peak_gflops: number | null;
  /** What ran the convolutions: `oneDNN (…)`, `OpenBLAS`, or the backend's own kernels. */
  conv_library: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Seconds per call of `step`: `warmup` untimed calls, then the median of `steps` timed ones. */
function timed(step: () => void, steps: number, warmup: number): number {
  for (let i = 0; i < warmup; i++) step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    step();
    times.push((performance.now() - t) / 1000);
  }
  return median(times);
}

/**
 * Runs on the active backend (call `selectBackend` first). A training step updates with
 * `rule` (the reference script's plain SGD at 0.1 unless told: a time estimate passes its
 * recipe's, since Adam's update costs more).
 */
export function benchmark(partial: Partial<BenchConfig> = {}, rule: UpdateRule = { optimizer: 'sgd', momentum: 0, lr: 0.1 }): BenchResult {
  const c = resolveBenchConfig(partial);
  const model = nin({ inputSize: c.resize, seed: 0 });
  try {
    checkFits(model, c);
  } catch (err) {
    model.dispose();
    throw err;
  }
  const optimizer = makeOptimizer(rule);
  const x = tf.randomUniform([c.batchSize, c.resize, c.resize, 1], 0, 1, 'float32', 1); // NHWC
  const y = tf.randomUniform([c.batchSize], 0, 10, 'int32', 2);
  try {
    const forward = () => tf.tidy(() => { logitsOf(model, x).dataSync(); });
    const micro = autoMicroBatchSize(model, c.batchSize);
    const trainStep = () => { sgdStep(model, optimizer, x as tf.Tensor4D, y as tf.Tensor1D, micro); };
    const fwd = timed(forward, c.steps, c.warmup);
    const trn = timed(trainStep, c.steps, c.warmup);
    const flops = countFlops(model);
    const native = tf.getBackend() === 'wasm' && nativeConvolutionsActive();
    const peak = native ? sgemmGflops() : undefined;
    return {
      backend: tf.getBackend(),
      resize: c.resize,
      batch_size: c.batchSize,
      forward_img_s: round1(c.batchSize / fwd),
      train_img_s: round1(c.batchSize / trn),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      gflops: round1((3 * flops * c.batchSize) / trn / 1e9),
      forward_gflops: round1((flops * c.batchSize) / fwd / 1e9),
      peak_gflops: peak === undefined ? null : round1(peak),
      conv_library: native ? nativeConvLibrary() ?? 'OpenBLAS' : `${tf.getBackend()} kernels`,
    };
  } finally {
    tf.dispose([x, y]);
    disposeOptimizer(optimizer);
    model.dispose();
  }
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/** Measured memory of one model, as the resource-use exercise asks. */
export interface ResourceUse {
  /** Trainable parameters. */
  params: number;
  /** Forward-pass FLOPs per image. */
  flopsPerImage: number;
  /**
   * Tensor bytes one training step needs at its peak: the weights, the batch, and what the
   * step holds at its fullest (activations kept for the backward pass, gradients).
   */
  trainPeakBytes: number;
  /** The same for predicting one batch: weights, batch, and the forward pass's peak. */
  predictPeakBytes: number;
}

/** Bytes of live tensors above the level before `work`, at the fullest point of `work`. */
async function peakAbove(work: () => void): Promise<number> {
  const before = tf.memory().numBytes;
  // tf.profile returns the engine's one profile object, which the next call overwrites:
  // read the figure at once.
  const { peakBytes } = await tf.profile(work);
  return Math.max(0, peakBytes - before);
}

/**
 * Parameters, FLOPs and the tensor memory of one training step and one prediction of
 * `batchSize` random images, measured with `tf.profile` (tfjs's own byte count of live
 * tensors, the same on every backend). Tensors that other code holds are not counted. The
 * model's weights change (one SGD step at a tiny learning rate): pass a model built for this.
 */
export async function resourceUse(model: tfl.LayersModel, batchSize: number): Promise<ResourceUse> {
  const [, h, w, c] = model.inputs[0].shape as number[];
  const x = tf.randomUniform([batchSize, h, w, c], 0, 1, 'float32', 3);
  const y = tf.randomUniform([batchSize], 0, 10, 'int32', 4);
  const optimizer = tf.train.sgd(1e-9);
  try {
    const micro = autoMicroBatchSize(model, batchSize);
    const held = model.weights.reduce((sum, v) => sum + v.read().size * 4, 0) + (x.size + y.size) * 4;
    const train = await peakAbove(() => { sgdStep(model, optimizer, x as tf.Tensor4D, y as tf.Tensor1D, micro); });
    const predict = await peakAbove(() => { tf.tidy(() => { logitsOf(model, x).dataSync(); }); });
    return {
      params: countParams(model),
      flopsPerImage: countFlops(model),
      trainPeakBytes: held + train,
      predictPeakBytes: held + predict,
    };
  } finally {
    tf.dispose([x, y]);
    optimizer.dispose();
  }
}
