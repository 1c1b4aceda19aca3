/**
 * Keeping a notebook's training within its time budget on a slower machine. The recipe
 * (epochs, image size, optimizer) stays; what shrinks is the number of training images per
 * epoch, and only when even a few thousand images per epoch would not fit, the epochs. The
 * caller prints the note, so the reader knows what was cut and why.
 */
import type { TrainingEstimate } from './benchmark';
import { positiveFinite, positiveInt, withDefaults } from '../core/validate';

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
