/**
 * Time to accuracy, DAWNBench's yardstick of training speed: how long a recipe takes, on this
 * machine, until the test accuracy first reaches a target.
 *
 *   const r = await timeToAccuracy({ profile: 'cpu', train: { seed: 1 } }, data, { target: 0.9 });
 *   r.reached, r.seconds, r.epochs, r.curve   // the curve: one point per evaluation
 *
 * The run trains through the one door (lib/training/run.ts) and evaluates the whole test
 * split `evalsPerEpoch` times per epoch, evenly spaced, the last at the epoch's end (the
 * loop's own evaluation). The clock starts before the model is built and stops at the
 * evaluation that reaches the target; evaluations count in the time. Loading the data from
 * disk does not (it is the same for every recipe). A profile's time budget does not apply:
 * the recipe runs as written, and stops at the target or at its last epoch.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { evaluateAccuracy } from '../core/evaluate';
import { FashionMnistSplit, numBatches, sliceSplit } from '../core/fashionMnist';
import type { TrainHistory } from '../core/history';
import type { NinConfig } from '../core/model';
import type { TrainConfig } from '../core/trainConfig';
import { ConfigError, positiveInt, withDefaults } from '../core/validate';
import type { TrainData } from './loop';
import { profileSettings, RunOptions, RunView, TrainingRun } from './run';

export interface TimeToAccuracyConfig {
  /** Test accuracy to reach, on the whole test split given. @default 0.9 */
  target: number;
  /** Evaluations per epoch, evenly spaced by steps; the last is the epoch's own. @default 2 */
  evalsPerEpoch: number;
}

export const TIME_TO_ACCURACY_DEFAULTS: Readonly<TimeToAccuracyConfig> = Object.freeze({ target: 0.9, evalsPerEpoch: 2 });

/** Fills defaults and checks every field; throws a ConfigError naming the first bad one. */
export function resolveTimeToAccuracyConfig(partial: Partial<TimeToAccuracyConfig> = {}): TimeToAccuracyConfig {
  const c = withDefaults('time to accuracy', partial, TIME_TO_ACCURACY_DEFAULTS);
  if (typeof c.target !== 'number' || !(c.target > 0 && c.target <= 1)) {
    throw new ConfigError((n) => `${n} must be a test accuracy in (0, 1], got ${String(c.target)}`, 'target');
  }
  positiveInt('evalsPerEpoch', c.evalsPerEpoch);
  return c;
}

/** One evaluation: when it finished, how far training had come, and the test accuracy. */
export interface AccuracyPoint {
  /** Seconds since the clock started, this evaluation included. */
  seconds: number;
  /** Epochs trained (fractional between epoch ends). */
  epochs: number;
  /** Training images seen. */
  images: number;
  testAcc: number;
}

export interface TimeToAccuracy {
  /** The recipe as it ran: its training and model configs, resolved. */
  recipe: { train: TrainConfig; model: NinConfig; trainLimit?: number; testLimit?: number };
  target: number;
  /** Whether the test accuracy reached the target before the recipe's last epoch ended. */
  reached: boolean;
  /** Seconds to the evaluation that reached the target (or to the run's end). */
  seconds: number;
  /** Of those, seconds spent evaluating. */
  evalSeconds: number;
  /** Epochs and images trained by then. */
  epochs: number;
  images: number;
  /** Every evaluation, in order. */
  curve: AccuracyPoint[];
  /** The loop's per-epoch history up to the stop. */
  history: TrainHistory;
}

/** Who watches a measured run: a view as `trainNin` takes, each evaluation as it comes, a signal that stops it. */
export interface Watchers {
  view?: RunView;
  onEvaluation?: (point: AccuracyPoint) => void;
  signal?: AbortSignal;
}

/**
 * Trains `options`' recipe on `data` until the test accuracy reaches `config.target` (see
 * the module's comment). A stop from `watchers.signal` ends it early (the result then says
 * how far it came). The model is disposed.
 */
export async function timeToAccuracy(
  options: RunOptions, data: TrainData, config: Partial<TimeToAccuracyConfig> = {}, watchers: Watchers = {},
): Promise<TimeToAccuracy> {
  const c = resolveTimeToAccuracyConfig(config);
  const run = TrainingRun.open(withoutBudget(options));
  const stopper = new AbortController();
  const { view = {}, signal } = watchers;
  const watch = new Watch(c, run, data, stopper, watchers.onEvaluation);
  const started = performance.now();
  watch.startClock(started);
  const result = await run.train(data, watch.view(view), signal ? AbortSignal.any([signal, stopper.signal]) : stopper.signal);
  result.model.dispose();
  const last = watch.curve.at(-1);
  const reached = last !== undefined && last.testAcc >= c.target;
  return {
    recipe: { train: run.config, model: run.model, ...run.limits }, target: c.target, reached, seconds: reached ? last.seconds : (performance.now() - started) / 1000,
    evalSeconds: watch.evalSeconds, epochs: last?.epochs ?? 0, images: last?.images ?? 0, curve: watch.curve,
    history: result.history,
  };
}

/** The options with any time budget taken out (a profile's included): the recipe runs as written. */
function withoutBudget(options: RunOptions): RunOptions {
  const profile = profileSettings(options.profile);
  if (profile === undefined) return { ...options, budgetSeconds: undefined };
  const { budgetSeconds: _, ...settings } = profile;
  return { ...options, profile: { train: settings.train, model: settings.model, trainLimit: settings.trainLimit, testLimit: settings.testLimit }, budgetSeconds: undefined };
}

/** Watches a run: evaluates at its points, records the curve, stops it at the target. */
class Watch {
  readonly curve: AccuracyPoint[] = [];
  evalSeconds = 0;
  private started = 0;
  private epochEndStarted = 0;
  private model?: tfl.LayersModel;
  private readonly trainCount: number;
  private readonly steps: number;
  private readonly evalAfter: Set<number>;
  /** The test split the run evaluates on (its limit's share). */
  private readonly test: FashionMnistSplit;

  constructor(private readonly c: TimeToAccuracyConfig, private readonly run: TrainingRun, data: TrainData,
    private readonly stopper: AbortController, private readonly onEvaluation?: (point: AccuracyPoint) => void) {
    this.test = sliceSplit(data.test, 0, run.limits.testLimit ?? data.test.count);
    this.trainCount = Math.min(run.limits.trainLimit ?? data.train.count, data.train.count);
    this.steps = numBatches(this.trainCount, run.config.batchSize);
    // Steps after which to evaluate within an epoch (1-based); the epoch's last is the loop's.
    this.evalAfter = new Set(Array.from({ length: c.evalsPerEpoch - 1 }, (_, j) => Math.round((j + 1) * this.steps / c.evalsPerEpoch))
      .filter((s) => s > 0 && s < this.steps));
  }

  startClock(at: number): void {
    this.started = at;
  }

  /** The caller's view, with this watch's evaluations around it. */
  view(inner: RunView): RunView {
    const { onNote: _, ...rest } = inner; // a view that takes notes would have the run time steps for an estimate
    return {
      ...rest,
      onStart: async (run, done, model) => {
        this.model = model;
        await inner.onStart?.(run, done, model);
      },
      onBatchEnd: async (info) => {
        await inner.onBatchEnd?.(info);
        const step = info.batch + 1;
        if (this.evalAfter.has(step)) this.evaluate(info.epoch, step);
        if (step === this.steps) this.epochEndStarted = performance.now(); // the loop evaluates next
      },
      onEpochEnd: async (result, history) => {
        this.evalSeconds += (performance.now() - this.epochEndStarted) / 1000;
        this.record(result.epoch, this.steps, result.testAcc);
        await inner.onEpochEnd?.(result, history);
      },
    };
  }

  private evaluate(epoch: number, step: number): void {
    const t = performance.now();
    const { batchSize, resize } = this.run.config;
    const acc = evaluateAccuracy(this.model!, this.test, { batchSize: Math.max(batchSize, 256), resize });
    this.evalSeconds += (performance.now() - t) / 1000;
    this.record(epoch, step, acc);
  }

  /** An evaluation after `step` steps of epoch `epoch` (1-based); the target reached stops the run. */
  private record(epoch: number, step: number, testAcc: number): void {
    const images = (epoch - 1) * this.trainCount + Math.min(step * this.run.config.batchSize, this.trainCount);
    const seconds = (performance.now() - this.started) / 1000;
    const point = { seconds, epochs: epoch - 1 + step / this.steps, images, testAcc };
    this.curve.push(point);
    this.onEvaluation?.(point);
    if (testAcc >= this.c.target) this.stopper.abort();
  }
}
