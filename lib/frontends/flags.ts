/**
 * The command line's words for the library's settings: argument parsers, the recipe flags that
 * `nin train` and `nin time-to-accuracy` share, and the map from config fields to flags that
 * error messages use (the library names fields; the command line says flags).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKEND_CHOICES } from '../kernels/backend';
import { KERNEL_INITS, KernelInit, NIN_DEFAULTS } from '../core/model';
import { LrSchedule, OptimizerName, TRAIN_DEFAULTS } from '../core/trainConfig';
import { beyondExact } from '../core/validate';
import { PROFILE_NAMES, ProfileName, PROFILES } from '../training/profiles';
import type { RunOptions } from '../training/run';

export function intArg(value: string): number {
  const text = value.trim();
  if (!/^[+-]?\d+$/.test(text)) throw new InvalidArgumentError('expected an integer.');
  const n = Number(text);
  // Past 2^53 the digits would be rounded (9007199254740993 reads as ...992): refuse, not round.
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${text} is ${beyondExact(n)}.`);
  return n;
}

export function numberArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError('expected a number.');
  return n;
}

export const backendOption = () => new Option('--backend <name>', 'tfjs backend (default: $NIN_BACKEND, else auto)')
  .choices(BACKEND_CHOICES as unknown as string[]);

/** Config field → the flag that sets it, so errors name what the user typed. */
export const FLAGS: Record<string, string> = {
  numEpochs: '--epochs', lr: '--lr', batchSize: '--batch-size', resize: '--resize', seed: '--seed',
  trainLimit: '--train-limit', testLimit: '--test-limit', oneByOneCount: '--one-by-one', steps: '--steps',
  dataDir: '--data-dir', backend: '--backend', checkpointDir: '--checkpoint-dir', momentum: '--momentum',
  lrSchedule: '--lr-schedule', optimizer: '--optimizer', warmupSteps: '--warmup-steps', init: '--init',
  classBlockBias: '--class-block-bias', classBlockMargin: '--class-block-margin', labelSmoothing: '--label-smoothing',
  resume: '--resume', modelDir: '--model', profile: '--profile', target: '--target', evalsPerEpoch: '--evals-per-epoch', runs: '--runs',
};

/** The recipe flags as commander parses them (undefined: not given). */
export interface RecipeOpts {
  profile?: string; epochs?: number; optimizer?: string; lr?: number; lrSchedule?: string; warmupSteps?: number;
  init?: string; momentum?: number; classBlockBias?: number; classBlockMargin?: number; labelSmoothing?: number;
  batchSize?: number; resize?: number; seed?: number; trainLimit?: number; testLimit?: number; oneByOne: number;
}

/** Adds the flags that say how to train (a profile, then settings over it) to `command`. */
export function addRecipeOptions(command: Command): Command {
  const cpu = PROFILES.cpu;
  return command
    .addOption(new Option('--profile <name>', "start from a notebook profile's settings (the flags below override them)")
      .choices(PROFILE_NAMES as unknown as string[]))
    .option('--epochs <n>', `passes over the training set (default ${TRAIN_DEFAULTS.numEpochs})`, intArg)
    .option('--optimizer <name>', `sgd (the chapter's), or adam: try --lr 0.001 with it (default ${TRAIN_DEFAULTS.optimizer})`)
    .option('--lr <x>', `learning rate (default ${TRAIN_DEFAULTS.lr})`, numberArg)
    .option('--lr-schedule <name>', `constant, or cosine or linear: decay from --lr towards 0 over the run (default ${TRAIN_DEFAULTS.lrSchedule})`)
    .option('--warmup-steps <n>', `steps of linear learning-rate warm-up before the schedule (default ${TRAIN_DEFAULTS.warmupSteps})`, intArg)
    .option('--init <name>', `starting weights: ${KERNEL_INITS.join(', ')} (see docs/recipe.md; default ${NIN_DEFAULTS.init})`)
    .option('--class-block-bias <b>', `starting bias of the last block, whose channels are the classes (the cpu recipe: ${cpu.model.classBlockBias}; default ${NIN_DEFAULTS.classBlockBias})`, numberArg)
    .option('--class-block-margin <m>', `before the first step, lift the last block's biases so that every class channel is at least m on the first 256 training images (the cpu recipe: ${cpu.train.classBlockMargin}; default ${TRAIN_DEFAULTS.classBlockMargin})`, numberArg)
    .option('--label-smoothing <e>', `train towards 1 − e on the true class and e/10 on each class (default ${TRAIN_DEFAULTS.labelSmoothing})`, numberArg)
    .option('--momentum <m>', `SGD momentum in [0, 1), 0 for plain SGD; sgd only (default ${TRAIN_DEFAULTS.momentum})`, numberArg)
    .option('--batch-size <n>', `examples per step (default ${TRAIN_DEFAULTS.batchSize})`, intArg)
    .option('--resize <px>', `image side fed to the network, at least 67 (default ${TRAIN_DEFAULTS.resize})`, intArg)
    .option('--train-limit <n>', 'use only the first n training examples', intArg)
    .option('--test-limit <n>', 'use only the first n test examples', intArg)
    .option('--one-by-one <n>', 'follow-up 1×1 convolutions per block (0–3)', intArg, NIN_DEFAULTS.oneByOneCount)
    .option('--seed <n>', `seed for initialisation and shuffling (default ${TRAIN_DEFAULTS.seed})`, intArg);
}

/** A run's options as the library takes them: only what the user gave (undefined: the profile's, the default, or the checkpoint's). */
export function recipeOptions(opts: RecipeOpts, oneByOneGiven: boolean): RunOptions {
  return {
    train: {
      numEpochs: opts.epochs, optimizer: opts.optimizer as OptimizerName | undefined, lr: opts.lr,
      lrSchedule: opts.lrSchedule as LrSchedule | undefined, warmupSteps: opts.warmupSteps, momentum: opts.momentum,
      classBlockMargin: opts.classBlockMargin, labelSmoothing: opts.labelSmoothing,
      batchSize: opts.batchSize, resize: opts.resize, seed: opts.seed,
    },
    model: {
      oneByOneCount: oneByOneGiven ? opts.oneByOne : undefined, init: opts.init as KernelInit | undefined,
      classBlockBias: opts.classBlockBias,
    },
    profile: opts.profile as ProfileName | undefined, trainLimit: opts.trainLimit, testLimit: opts.testLimit,
  };
}
