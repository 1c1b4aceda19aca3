/**
 * What a training run records as it goes: one result per epoch (what d2l's trainer prints),
 * where a stopped epoch got to, and the two summary lines the chapter ends with. Plain data,
 * shared by the loop, the checkpoints, the plots and every front end.
 */
import type { TrainConfig } from './trainConfig';
import { ConfigError } from './validate';

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

/** An epoch with no step done yet. */
export const epochStart = (epoch: number): PartialEpoch => ({ epoch, steps: 0, lossSum: 0, correct: 0, seen: 0, trainSeconds: 0 });

/** What training returns: the config it ran with and one result per completed epoch. */
export interface TrainHistory {
  config: TrainConfig;
  /** Completed epochs, including those of a run this one resumed. */
  epochs: EpochResult[];
  /** Set when training was stopped from outside before `numEpochs`: where it stopped. */
  interrupted?: PartialEpoch;
}

/** Where a resumed run continues: the state a checkpoint holds besides the weights. */
export interface TrainProgress {
  /** Results of the completed epochs 1..k; training continues with epoch k + 1. */
  epochs: EpochResult[];
  /** Steps of epoch k + 1 already done, when the run was stopped mid-epoch. */
  partial?: PartialEpoch;
}

/** After every training step. */
export interface BatchInfo {
  epoch: number;
  /** 0-based index within the epoch. */
  batch: number;
  numBatches: number;
  loss: number;
  /** Fraction correct in this batch. */
  acc: number;
}

/** "epoch 2 complete" / "epoch 2 complete + 13 steps of epoch 3". */
export function describePosition(epochs: number, partial?: Pick<PartialEpoch, 'epoch' | 'steps'>): string {
  const done = epochs === 0 ? 'no epoch complete' : `epoch ${epochs} complete`;
  return partial && partial.steps > 0 ? `${done} + ${partial.steps} step${partial.steps === 1 ? '' : 's'} of epoch ${partial.epoch}` : done;
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
