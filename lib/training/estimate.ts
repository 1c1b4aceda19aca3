/**
 * How long a training run will take on this machine, and keeping it within a time budget on
 * a slower one. The recipe (epochs, image size, optimizer) stays; what shrinks is the number
 * of training images per epoch, and only when even a few thousand images per epoch would not
 * fit, the epochs. A training run (lib/training/run.ts) reports the estimate and the note, so
 * the reader knows what was cut and why.
 */
import type { TrainConfig } from '../core/trainConfig';
import { positiveFinite, positiveInt, withDefaults } from '../core/validate';
import { benchmark, BenchConfig, BenchResult } from './benchmark';

/** How long a training run will take on this machine, from a few steps measured here. */
export interface TrainingEstimate {
  /** The whole run: every epoch's training steps and its evaluation of the test split. */
  seconds: number;
  trainImagesPerSec: number;
  forwardImagesPerSec: number;
  epochs: number;
  trainCount: number;
  testCount: number;
}

/**
 * Estimates a run of `config` on splits of `trainCount` and `testCount` images by timing a
 * few training steps and forward passes of a throwaway NiN on random data (a second or two
 * at 67 px; the run's own model is not touched). Three untimed steps first: a fresh model's
 * first few steps can take twice as long (one probe in a notebook: 392, 189, then 94 ms at
 * 67 px), and one estimate after a single untimed step said 17 minutes for a run of 10.
 * Batch preparation is not timed, so the run takes somewhat longer. `measure` is the
 * benchmark to use (tests pass their own).
 */
export function estimateTraining(
  config: TrainConfig, trainCount: number, testCount: number,
  measure: (c: Partial<BenchConfig>, rule: TrainConfig) => BenchResult = benchmark,
): TrainingEstimate {
  const r = measure({ resize: config.resize, batchSize: config.batchSize, steps: 3, warmup: 3 }, config);
  const perEpoch = trainCount / r.train_img_s + testCount / r.forward_img_s;
  return {
    seconds: config.numEpochs * perEpoch, trainImagesPerSec: r.train_img_s, forwardImagesPerSec: r.forward_img_s,
    epochs: config.numEpochs, trainCount, testCount,
  };
}

/** "measured here: 380 training and 1,400 inference images/s, so 6 epochs of … take about 17 minutes". */
export function describeEstimate(e: TrainingEstimate): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const minutes = e.seconds / 60;
  const time = minutes < 1.5 ? `${Math.max(1, Math.round(e.seconds))} seconds` : `${Math.round(minutes)} minutes`;
  return `measured here: ${n(e.trainImagesPerSec)} training and ${n(e.forwardImagesPerSec)} inference images/s, so ` +
    `${e.epochs} epoch${e.epochs === 1 ? '' : 's'} of ${n(e.trainCount)} training images (and ${n(e.testCount)} test images ` +
    `after each) take about ${time} on this machine`;
}


export interface BudgetOptions {
  /** The run's budget in seconds. */
  seconds: number;
  /** A run this much over the budget is left alone (estimates are rough). @default 1.15 */
  slack: number;
  /** Fewest training images per epoch before epochs are cut instead. @default 5000 */
  minTrainImages: number;
  /** Training images per epoch are rounded down to a multiple of this. @default 1000 */
  roundTo: number;
  /** Named in the note, e.g. "the cpu profile's". @default 'the' */
  whose: string;
}

const BUDGET_DEFAULTS: Omit<BudgetOptions, 'seconds'> = { slack: 1.15, minTrainImages: 5000, roundTo: 1000, whose: 'the' };

/** What fits: training images per epoch and epochs, and a note when either was cut. */
export interface BudgetFit {
  trainCount: number;
  epochs: number;
  /** One sentence saying what was cut and why; undefined when nothing was. */
  note?: string;
}

/**
 * The largest run like `estimate`'s that fits the budget (see the module comment for the
 * rule); with no budget (`seconds` undefined) the run as estimated.
 */
export function fitToBudget(estimate: TrainingEstimate, options: Partial<BudgetOptions> & { seconds: number | undefined }): BudgetFit {
  if (options.seconds === undefined) return { trainCount: estimate.trainCount, epochs: estimate.epochs };
  const o = withDefaults('budget', options, { ...BUDGET_DEFAULTS, seconds: options.seconds });
  positiveFinite('seconds', o.seconds);
  positiveFinite('slack', o.slack);
  positiveInt('minTrainImages', o.minTrainImages);
  positiveInt('roundTo', o.roundTo);
  const { trainCount, epochs } = estimate;
  if (estimate.seconds <= o.seconds * o.slack) return { trainCount, epochs };
  const testSeconds = estimate.testCount / estimate.forwardImagesPerSec;
  const epochSeconds = (n: number) => n / estimate.trainImagesPerSec + testSeconds;
  const fitting = Math.floor((o.seconds / epochs - testSeconds) * estimate.trainImagesPerSec);
  const floor = Math.min(trainCount, o.minTrainImages);
  const fit = fitting >= floor
    ? { trainCount: Math.max(floor, Math.floor(fitting / o.roundTo) * o.roundTo), epochs }
    : { trainCount: floor, epochs: Math.max(1, Math.floor(o.seconds / epochSeconds(floor))) };
  return { ...fit, note: budgetNote(estimate, fit, o) };
}

function budgetNote(e: TrainingEstimate, fit: { trainCount: number; epochs: number }, o: BudgetOptions): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const minutes = (s: number) => `${Math.max(1, Math.round(s / 60))} minutes`;
  const cut = [
    fit.trainCount < e.trainCount ? `the first ${n(fit.trainCount)} training images per epoch instead of ${n(e.trainCount)}` : '',
    fit.epochs < e.epochs ? `${fit.epochs} epoch${fit.epochs === 1 ? '' : 's'} instead of ${e.epochs}` : '',
  ].filter(Boolean).join(' and ');
  return `shrunk to fit ${o.whose} budget of ${minutes(o.seconds)}: the whole run would take about ${minutes(e.seconds)} ` +
    `on this machine (${n(e.trainImagesPerSec)} training images/s), so it uses ${cut}; the recipe and image size are ` +
    'unchanged, but fewer images seen means a lower accuracy';
}
