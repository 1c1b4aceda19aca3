/**
 * A training run, as the command line and the notebooks both start one: fresh or resumed
 * from a checkpoint folder, saved after every epoch, stopped cleanly from outside, and
 * stopped with the last good checkpoint named when the network dies or diverges.
 *
 * It has two halves so that every option and the checkpoint folder are checked before the
 * slow parts (a backend, the data) start:
 *
 *   const plan = planRun({ train: { numEpochs: 6 }, checkpointDir: 'runs/a', resume: 'auto' });
 *   const data = await loadFashionMnist(plan.dataLimits);
 *   const outcome = await executeRun(plan, data, hooks, signal);   // releases the folder
 *
 * A run with a checkpoint folder holds its lock (lib/folderLock.ts) from `planRun` until
 * `executeRun` ends (or `plan.release()`): one folder, one writer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  CheckpointLocation, CheckpointState, hasCheckpoint, latestCheckpoint, loadCheckpoint, saveCheckpoint,
} from '../storage/checkpoint';
import { FileError, fsReason, makeDirs, statOrUndefined, userFsCode } from '../storage/files';
import { FolderLock } from '../storage/folderLock';
import { DeadNetworkError, DivergedError, HealthConfig, UnhealthyError } from '../core/health';
import { KernelInit, nin, NinConfig, resolveNinConfig } from '../core/model';
import { disposeOptimizer, makeOptimizer } from '../core/optimizers';
import { checkTrainingFits, EpochResult, PartialEpoch, train, TrainCallbacks, TrainData, TrainHistory } from './loop';
import { OptimizerName, resolveTrainConfig, TrainConfig } from '../core/trainConfig';
import { ConfigError } from '../core/validate';

/** What a run is asked to do. */
export interface RunOptions {
  /** Training settings of a fresh run; on resume only `numEpochs` and `lr` may differ from the checkpoint. */
  train?: Partial<TrainConfig>;
  /** Model settings of a fresh run; `inputSize` follows `train.resize`, `seed` the run's seed. */
  model?: Partial<NinConfig>;
  /** Save a checkpoint here after every epoch (and when stopped); created if needed. */
  checkpointDir?: string;
  /**
   * `never` (default): a fresh run, refused if the folder already holds a checkpoint;
   * `always`: continue the folder's checkpoint; `auto`: continue it if there is one, else
   * start fresh (a notebook rerun after a kernel restart).
   */
  resume?: 'never' | 'always' | 'auto';
  /** The backend, as `selectBackend` describes it: recorded in checkpoints. */
  backend?: string;
  /** When the run counts its network as dead. */
  health?: Partial<HealthConfig>;
}

/** Options given for a resumed run; undefined means "as the checkpoint has it". */
export type ResumeOptions = Partial<Pick<TrainConfig, 'numEpochs' | 'lr' | 'batchSize' | 'resize' | 'seed' | 'momentum' |
  'lrSchedule' | 'warmupSteps'>> & { optimizer?: OptimizerName; oneByOneCount?: number; init?: KernelInit; classBlockBias?: number };

/** A run checked and ready: its configs, where it resumes from, and the folder it holds. */
export interface RunPlan {
  config: TrainConfig;
  model: NinConfig;
  checkpointDir?: string;
  /** The checkpoint resumed from; undefined for a fresh run. */
  saved?: CheckpointState & { name: string; recovered?: string };
  /** The data a resumed run must use: the checkpoint's split sizes. Empty for a fresh run. */
  dataLimits: { trainLimit?: number; testLimit?: number };
  backend?: string;
  health?: Partial<HealthConfig>;
  /** The checkpoint folder's lock, held until the run ends. */
  lock?: FolderLock;
  /** Lets go of the checkpoint folder (executeRun does it when it ends). */
  release(): void;
}

/** Hooks of a run: the training callbacks, plus what happens to its checkpoints. */
export interface RunHooks extends TrainCallbacks {
  /** Before the first step, with the epochs already done (a resumed run's history). */
  onStart?: (done: EpochResult[], plan: RunPlan) => void | Promise<void>;
  /** After each checkpoint is written. */
  onSaved?: (checkpoint: CheckpointLocation) => void;
}

/** How a run ended. The caller owns `model` and disposes it. */
export interface RunOutcome {
  history: TrainHistory;
  model: tfl.LayersModel;
  /** The last checkpoint written, when there is a folder. */
  saved?: CheckpointLocation;
}

/** "epoch 2 complete" / "epoch 2 complete + 13 steps of epoch 3". */
export function describePosition(epochs: number, partial?: Pick<PartialEpoch, 'epoch' | 'steps'>): string {
  const done = epochs === 0 ? 'no epoch complete' : `epoch ${epochs} complete`;
  return partial && partial.steps > 0 ? `${done} + ${partial.steps} step${partial.steps === 1 ? '' : 's'} of epoch ${partial.epoch}` : done;
}

/**
 * The configs a resumed run continues with: the checkpoint's, with `numEpochs` and `lr` taken
 * from `given` when set (a smaller learning rate after a divergence is a resume; with a
 * schedule, `lr` is its new peak and more epochs stretch it). Any other field that differs
 * from the checkpoint is a ConfigError carrying that field, as is asking for no more epochs
 * than are done (unless `finishedIsFine`: a notebook rerun finds its run complete).
 */
export function resumeConfigs(
  state: CheckpointState, given: ResumeOptions, dir: string, finishedIsFine = false,
): { train: TrainConfig; model: NinConfig } {
  const saved = resolveTrainConfig(state.train);
  const model = resolveNinConfig(state.model);
  const fixed: [keyof ResumeOptions, number | string | undefined][] = [
    ['resize', saved.resize], ['batchSize', saved.batchSize], ['seed', saved.seed], ['oneByOneCount', model.oneByOneCount],
    ['optimizer', saved.optimizer], ['momentum', saved.momentum], ['lrSchedule', saved.lrSchedule],
    ['warmupSteps', saved.warmupSteps], ['init', model.init], ['classBlockBias', model.classBlockBias],
  ];
  for (const [name, kept] of fixed) {
    if (given[name] !== undefined && given[name] !== kept) {
      throw new ConfigError((n) => `cannot resume from ${dir}: ${n} ${given[name]} differs from the checkpoint's ${kept}; ` +
        `leave ${n} out to continue with ${kept}, or start afresh in another checkpoint directory`, name);
    }
  }
  const train = resolveTrainConfig({ ...state.train, numEpochs: given.numEpochs ?? saved.numEpochs, lr: given.lr ?? saved.lr });
  const done = state.epochsCompleted;
  if (train.numEpochs < done || (train.numEpochs === done && state.steps === 0 && !finishedIsFine)) {
    throw new ConfigError((n) => `the checkpoint in ${dir} has already completed ${done} epoch${done === 1 ? '' : 's'}` +
      `${given.numEpochs === undefined ? '' : ` (asked for ${given.numEpochs})`}; pass ${n} N with N > ${done} to train further`,
    'numEpochs');
  }
  return { train, model };
}

/**
 * Takes the checkpoint folder: creates it if needed (not when it must hold a checkpoint to
 * resume from) and takes its lock. `release` lets go, and removes the folder again if this
 * run created it and left nothing in it.
 */
function holdFolder(dir: string, mustExist: boolean): { lock: FolderLock; release(): void } {
  const stat = statOrUndefined(dir, 'checkpoint directory');
  if (stat && !stat.isDirectory()) throw new ConfigError(`checkpoint directory ${dir} is not a directory; choose another`);
  if (!stat && mustExist) {
    throw new ConfigError((n) => `checkpoint directory ${dir} does not exist; train without ${n} to create it (a run saves ` +
      'its first checkpoint at the end of epoch 1)', 'resume');
  }
  try {
    makeDirs(dir);
  } catch (err) {
    throw new FileError(`checkpoint directory ${dir} cannot be created ${fsReason(err)}; choose another`, userFsCode(err));
  }
  const lock = FolderLock.acquire(dir);
  return {
    lock,
    release: () => {
      lock.release();
      if (stat) return;
      try {
        fs.rmdirSync(dir); // only if empty: this run created it and saved nothing
      } catch {
        // it holds a checkpoint (or something else): keep it
      }
    },
  };
}

/**
 * Checks a run's options and its checkpoint folder, and takes the folder: everything that
 * can be refused is refused here, before any data is loaded. The finished plan holds the
 * folder's lock until {@link executeRun} ends or `plan.release()`.
 */
export function planRun(options: RunOptions): RunPlan {
  const dir = options.checkpointDir === undefined ? undefined : path.resolve(options.checkpointDir);
  const mode = options.resume ?? 'never';
  if (mode === 'always' && dir === undefined) {
    throw new ConfigError((n, name) => `${n} needs ${name('checkpointDir')} DIR, the folder a run saved its checkpoints in`, 'resume');
  }
  const fresh = { train: resolveTrainConfig(options.train), model: options.model ?? {} };
  const held = dir === undefined ? undefined : holdFolder(dir, mode === 'always');
  const lock = held?.lock;
  try {
    const holds = dir !== undefined && mode !== 'always' && hasCheckpoint(dir); // scans the folder: once
    const resuming = dir !== undefined && (mode === 'always' || (mode === 'auto' && holds));
    if (!resuming && holds) {
      throw new ConfigError((n) => `${dir} already holds a checkpoint; add ${n} to continue it, or choose another ` +
        'checkpoint directory (or delete that one) to start afresh', 'resume');
    }
    const base = { checkpointDir: dir, backend: options.backend, health: options.health, lock, release: () => held?.release() };
    if (!resuming) {
      const model = resolveNinConfig({ ...fresh.model, inputSize: fresh.train.resize, seed: fresh.model.seed ?? fresh.train.seed });
      return { ...base, config: fresh.train, model, dataLimits: {} };
    }
    const { state, name, recovered } = latestCheckpoint(dir!);
    const given: ResumeOptions = { ...options.train, ...options.model };
    const configs = resumeConfigs(state, given, dir!, mode === 'auto');
    return {
      ...base, config: configs.train, model: configs.model, saved: { ...state, name, recovered },
      dataLimits: { trainLimit: state.data.trainCount, testLimit: state.data.testCount },
    };
  } catch (err) {
    held?.release();
    throw err;
  }
}

/** The model and optimizer a plan starts from: fresh, or the checkpoint's. */
async function startingPoint(plan: RunPlan, hooks: RunHooks): Promise<{ model: tfl.LayersModel; optimizer: tf.Optimizer }> {
  if (plan.saved === undefined) {
    const model = nin(plan.model);
    try {
      checkTrainingFits(model); // before the first batch is resized
    } catch (err) {
      model.dispose();
      throw err;
    }
    return { model, optimizer: makeOptimizer(plan.config) };
  }
  const loaded = await loadCheckpoint(plan.checkpointDir!, plan.config);
  loaded.warnings.forEach((w) => hooks.onWarning?.(w));
  return { model: loaded.model, optimizer: loaded.optimizer };
}

/** Throws unless `data` has the split sizes the resumed checkpoint was trained on. */
function checkData(plan: RunPlan, data: TrainData): void {
  const s = plan.saved;
  if (s && (s.data.trainCount !== data.train.count || s.data.testCount !== data.test.count)) {
    throw new ConfigError(`cannot resume from ${plan.checkpointDir}: it was trained on ${s.data.trainCount} training / ` +
      `${s.data.testCount} test examples, this data has ${data.train.count} / ${data.test.count}; use the same data ` +
      'directory and limits as the first run');
  }
}

/**
 * Trains what `plan` describes on `data`: fresh or from its checkpoint, saving after every
 * epoch and, when `signal` stops it, at the step where it stopped. A dead or diverged
 * network stops the run with its error, extended to name the last good checkpoint. Releases
 * the checkpoint folder when it ends, however it ends.
 */
export async function executeRun(plan: RunPlan, data: TrainData, hooks: RunHooks = {}, signal?: AbortSignal): Promise<RunOutcome> {
  try {
    checkData(plan, data);
    const { model, optimizer } = await startingPoint(plan, hooks);
    const saver = new Saver(plan, data, model, optimizer, hooks);
    try {
      const done = plan.saved?.history ?? [];
      await hooks.onStart?.(done, plan);
      const history = await train(model, data, plan.config, {
        onBatchEnd: hooks.onBatchEnd,
        onWarning: hooks.onWarning,
        onEpochEnd: async (r, h) => {
          await saver.save(h);
          await hooks.onEpochEnd?.(r, h);
        },
      }, { resume: { epochs: done, partial: plan.saved?.partial }, optimizer, signal, health: plan.health });
      if (history.interrupted) await saver.save(history, history.interrupted);
      return { history, model, saved: saver.last };
    } catch (err) {
      model.dispose();
      throw saver.explain(err);
    } finally {
      disposeOptimizer(optimizer);
    }
  } finally {
    plan.release();
  }
}

/** Writes a plan's checkpoints and knows the last good one. */
class Saver {
  last?: CheckpointLocation;
  private lastWords: string | undefined;

  constructor(
    private readonly plan: RunPlan, private readonly data: TrainData, private readonly model: tfl.LayersModel,
    private readonly optimizer: tf.Optimizer, private readonly hooks: RunHooks,
  ) {
    const s = plan.saved;
    this.lastWords = s && describePosition(s.epochsCompleted, s.partial);
  }

  /** Saves the run's position (no-op without a folder), then removes the older checkpoints. */
  async save(history: TrainHistory, partial?: PartialEpoch): Promise<void> {
    const dir = this.plan.checkpointDir;
    if (dir === undefined) return;
    this.plan.lock?.assertHeld();
    const c = await saveCheckpoint(dir, this.model, {
      history: history.epochs, partial, train: this.plan.config, model: this.plan.model,
      data: { trainCount: this.data.train.count, testCount: this.data.test.count }, backend: this.plan.backend,
    }, this.optimizer);
    this.last = c;
    this.lastWords = describePosition(history.epochs.length, partial);
    c.warnings.forEach((w) => this.hooks.onWarning?.(w));
    this.hooks.onSaved?.(c);
  }

  /** `err` with the last good checkpoint named, for the errors a user acts on. */
  explain(err: unknown): unknown {
    const dir = this.plan.checkpointDir;
    if (dir === undefined || !(err instanceof UnhealthyError || err instanceof FileError)) return err;
    const kept = this.lastWords === undefined
      ? 'no checkpoint was saved (no epoch completed)'
      : `the last good checkpoint (${this.lastWords}) stays in ${dir}`;
    const message = `${err.message}; ${kept}`;
    if (err instanceof FileError) return new FileError(message, err.code);
    const Same = err instanceof DeadNetworkError ? DeadNetworkError : DivergedError;
    return new Same(message, err.position, this.lastWords);
  }
}
