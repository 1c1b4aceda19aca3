/** What the page and its training worker say to each other, and the recipes the page offers. */
import type { BatchInfo, EpochResult } from '../../lib/core/history';
import type { TrainConfig } from '../../lib/core/trainConfig';
import type { NinConfig } from '../../lib/core/model';
import { PROFILES } from '../../lib/training/profiles';

export interface Recipe {
  id: string;
  label: string;
  explain: string;
  train: Partial<TrainConfig>;
  model: Partial<NinConfig>;
}

const cpu = PROFILES.cpu;
/** Passes of the cpu recipe over the 2,000 shipped images: 64 steps of 128. */
const CPU_EPOCHS = 4;

/**
 * The cpu profile's recipe and a shorter one, both on the 2,000 shipped training images: 16 steps
 * of 128 an epoch where the profile has 469, so the cpu recipe here runs more epochs than the
 * profile and warms up over 10 steps instead of 100.
 */
export const RECIPES: Recipe[] = [
  {
    id: 'quick', label: 'quick: 2 epochs, batch 32',
    explain: `The cpu recipe made shorter: 67 px, ${cpu.model.init} init, Adam (lr 0.001, constant, no warm-up), label ` +
      `smoothing ${cpu.train.labelSmoothing}, batch 32, 2 epochs over the 2,000 shipped training images (126 steps). Expect ` +
      `the loss to jump above 3 in the first steps (${cpu.model.init} weights start with large scores), then fall steadily, ` +
      'and the maps and filters to take shape.',
    train: { ...cpu.train, numEpochs: 2, batchSize: 32, lr: 0.001, lrSchedule: 'constant', warmupSteps: 0 }, model: { ...cpu.model },
  },
  {
    id: 'cpu', label: `cpu recipe: ${CPU_EPOCHS} epochs, batch ${cpu.train.batchSize}`,
    explain: `The notebooks' cpu profile: 67 px, ${cpu.model.init} init, Adam lr ${cpu.train.lr} with a warm-up and cosine ` +
      `decay, label smoothing ${cpu.train.labelSmoothing}, batch 128, the class block started alive, but on the 2,000 shipped ` +
      `training images, not 60,000: ${CPU_EPOCHS} epochs of 16 steps instead of ${cpu.train.numEpochs} of 469, so its warm-up is 10 steps ` +
      'instead of 100.',
    train: { ...cpu.train, numEpochs: CPU_EPOCHS, warmupSteps: 10 }, model: { ...cpu.model },
  },
];

export type ToWorker =
  | { type: 'start'; recipe: string; seed: number }
  | { type: 'stop' }
  | { type: 'resume' };

export type FromWorker =
  | { type: 'ready'; backend: { name: string; why: string } }
  | { type: 'started'; config: TrainConfig; model: NinConfig; stepsPerEpoch: number }
  | { type: 'batch'; info: BatchInfo }
  | { type: 'epoch'; result: EpochResult }
  | { type: 'weights'; weights: { shape: number[]; data: Float32Array }[]; step: number }
  | { type: 'stopped'; where: string; finished: boolean }
  | { type: 'error'; message: string };
