/**
 * Training profiles for the notebooks: how much to train, chosen from the hardware.
 *
 * - `full`: the chapter's recipe (224 px, 5 epochs, lr 0.1, batch 128). Picked when a GPU
 *   backend (tfjs-node-gpu) is present.
 * - `cpu`: the chapter's accuracy (0.90) fast on a 2-core machine: the same network, trained
 *   on smaller images (67 px) with Adam, a warm-up and cosine decay, label smoothing and the
 *   class block started alive (the chapter's first exercise: tune the training, keep the
 *   architecture). About 2.6 minutes to 0.90 there (median seed); a 20-minute budget guards slower machines.
 * - `tiny`: a few hundred images, seconds per notebook, for CI and quick checks; accuracy
 *   stays near chance.
 *
 * `NIN_PROFILE=full|cpu|tiny` overrides the choice.
 */
import type { BackendInfo } from '../kernels/backend';
import { resolveTrainConfig, TrainConfig } from '../core/trainConfig';
import type { NinConfig } from '../core/model';
import { oneOf } from '../core/validate';

export const PROFILE_NAMES = ['full', 'cpu', 'tiny'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export interface Profile {
  name: ProfileName;
  /** One sentence: why this profile was chosen. */
  why: string;
  /** The complete training config (the profile's settings over TrainConfig's defaults). */
  train: TrainConfig;
  /** Model settings besides the input size (the rest are NinConfig's defaults: the chapter's network). */
  model: Partial<NinConfig>;
  /** Examples to use; undefined means the whole split. */
  trainLimit?: number;
  testLimit?: number;
  /** The chapter run's time budget in seconds (see RunSettings). */
  budgetSeconds?: number;
  /** A smaller budget for each of the exercises' many runs. */
  exercise: RunSettings<TrainConfig>;
}

/** What one training run uses: its training settings (`T`: partial in PROFILES, complete in a chosen Profile). */
export interface RunSettings<T = Partial<TrainConfig>> {
  train: T;
  model: Partial<NinConfig>;
  trainLimit?: number;
  testLimit?: number;
  /**
   * Seconds the run should take at most; on a slower machine the notebook trains on fewer
   * images per epoch to keep it (see fitToBudget). Undefined: no budget.
   */
  budgetSeconds?: number;
}

/** A profile as PROFILES writes it: only what differs from the defaults. */
type ProfileSettings = Omit<Profile, 'name' | 'why' | 'train' | 'exercise'> & { train: Partial<TrainConfig>; exercise: RunSettings };

/** A profile's settings with their training configs completed. */
function complete(name: ProfileName, why: string): Profile {
  const p = PROFILES[name];
  return { ...p, name, why, train: resolveTrainConfig(p.train), exercise: { ...p.exercise, train: resolveTrainConfig(p.exercise.train) } };
}

export const PROFILES: Readonly<Record<ProfileName, ProfileSettings>> = Object.freeze({
  full: {
    train: { numEpochs: 5, lr: 0.1, batchSize: 128, resize: 224 },
    model: {},
    exercise: { train: { numEpochs: 2, lr: 0.1, batchSize: 128, resize: 224 }, model: {} },
  },
  // Adam trains NiN at 67 px far faster than SGD. The class block starts alive: biases of 0.1,
  // and any channel below 0.5 on the first training images lifted to it (liftClassBlock); with
  // zero biases classes went silent for good on most seeds. He's weights give the first steps
  // signals large enough to learn from at once. Batch 128 at lr 0.003 (100 warm-up steps, cosine
  // decay over 2 epochs) with label smoothing 0.2 reaches 0.90 test accuracy at the end of its
  // second epoch on 3 of 5 seeds, about 2.6 minutes on 2 cores; without the smoothing it ends near 0.89.
  // Measured over seeds: docs/time-to-accuracy.md.
  cpu: {
    train: {
      numEpochs: 2, optimizer: 'adam', lr: 0.003, lrSchedule: 'cosine', warmupSteps: 100, batchSize: 128, resize: 67,
      classBlockMargin: 0.5, labelSmoothing: 0.2,
    },
    model: { classBlockBias: 0.1, init: 'he' },
    budgetSeconds: 20 * 60,
    exercise: {
      train: { numEpochs: 1, optimizer: 'adam', lr: 0.001, batchSize: 64, resize: 67, classBlockMargin: 0.5 },
      model: { classBlockBias: 0.1 },
      trainLimit: 20000, testLimit: 2000,
      budgetSeconds: 60,
    },
  },
  // Seconds, for CI: Adam with He initialisation and a short warm-up, which trains the few
  // steps it gets on every machine (Glorot's tiny first signals die there more often).
  tiny: {
    train: { numEpochs: 2, optimizer: 'adam', lr: 0.001, lrSchedule: 'cosine', warmupSteps: 4, batchSize: 32, resize: 67 },
    model: { init: 'he' }, trainLimit: 256, testLimit: 128,
    exercise: {
      train: { numEpochs: 1, optimizer: 'adam', lr: 0.001, warmupSteps: 2, batchSize: 32, resize: 67 }, model: { init: 'he' },
      trainLimit: 96, testLimit: 64,
    },
  },
});

/** The profile for this backend, unless `NIN_PROFILE` names one. */
export function chooseProfile(backend: BackendInfo, env: NodeJS.ProcessEnv = process.env): Profile {
  const forced = env.NIN_PROFILE;
  if (forced !== undefined && forced !== '') {
    const name = oneOf('NIN_PROFILE', forced, PROFILE_NAMES);
    return complete(name, `NIN_PROFILE=${name} was set`);
  }
  if (backend.description.includes('tfjs-node-gpu')) {
    return complete('full', 'a GPU backend (tfjs-node-gpu) is present, so the chapter\'s full recipe runs');
  }
  return complete('cpu', `no GPU backend (running on ${backend.description}), so a recipe that reaches the chapter's accuracy in minutes on 2 CPU cores runs`);
}

/**
 * A recipe in words: "6 epochs at 67 px, batch 64, adam lr 0.001 (cosine decay, 300 warm-up
 * steps, class block lifted to 0.5), class-block bias 0.1". Settings at their defaults are
 * left out; `describeProfile` and the command line's banner both say a recipe this way.
 */
export function describeRecipe(t: Partial<TrainConfig>, m: Partial<NinConfig>): string {
  const momentum = t.momentum ? ` with momentum ${t.momentum}` : '';
  const shape = [
    ...(t.lrSchedule !== undefined && t.lrSchedule !== 'constant' ? [`${t.lrSchedule} decay`] : []),
    ...(t.warmupSteps ? [`${t.warmupSteps} warm-up steps`] : []),
    ...(t.classBlockMargin ? [`class block lifted to ${t.classBlockMargin}`] : []),
    ...(t.labelSmoothing ? [`label smoothing ${t.labelSmoothing}`] : []),
  ];
  const schedule = shape.length > 0 ? ` (${shape.join(', ')})` : '';
  const init = `${m.init && m.init !== 'glorot' ? `, ${m.init} init` : ''}${m.classBlockBias ? `, class-block bias ${m.classBlockBias}` : ''}`;
  return `${t.numEpochs} epoch${t.numEpochs === 1 ? '' : 's'} at ${t.resize} px, ` +
    `batch ${t.batchSize}, ${t.optimizer ?? 'sgd'} lr ${t.lr}${schedule}${momentum}${init}`;
}

/**
 * A one-line description: "cpu profile: 6 epochs at 67 px, …, all examples" (see describeRecipe).
 */
export function describeProfile(p: Pick<Profile, 'name' | 'model' | 'trainLimit' | 'testLimit'> & { train: Partial<TrainConfig> }): string {
  const limits = p.trainLimit === undefined ? 'all examples' : `${p.trainLimit} training / ${p.testLimit} test examples`;
  return `${p.name} profile: ${describeRecipe(p.train, p.model)}, ${limits}`;
}
