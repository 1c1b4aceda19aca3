/**
 * The one door to training: a run, as the command line, the notebooks and the exercises all
 * start one.
 *
 *   const result = await trainNin({ profile: 'cpu', train: { seed: 1 }, checkpointDir: 'runs/a', resume: 'auto' },
 *     data, new Animator());
 *
 * A run resolves its configs once (a profile's settings under the options given), reads its
 * checkpoint folder once, owns the optimizer and its learning-rate schedule, fits itself to a
 * time budget, runs the health checks, saves a checkpoint after every epoch (and where a
 * signal stopped it), and reports through a view: the command line's reporter and the
 * notebooks' Animator are both views. A failure is data (a UserError: its fields, the
 * position, the last good checkpoint, a suggested learning rate) that each front end says in
 * its own words.
 *
 * It has two halves so that every option and the checkpoint folder are checked before the
 * slow parts (a backend, the data) start: `TrainingRun.open(options)` refuses what it can and
 * takes the folder's lock (lib/storage/folderLock.ts: one folder, one writer), `run.train(data,
 * view)` trains and lets the folder go, however it ends. `trainNin` does both.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { sliceSplit } from '../core/fashionMnist';
import { describePosition, EpochResult, PartialEpoch, TrainHistory } from '../core/history';
import { HealthConfig, HealthMonitor, UnhealthyError } from '../core/health';
import { nin, NinConfig, resolveNinConfig } from '../core/model';
import { disposeOptimizer, makeOptimizer, NinOptimizer } from '../core/optimizers';
import { resolveTrainConfig, TrainConfig } from '../core/trainConfig';
import { ConfigError, knownKeys, positiveFinite, positiveInt, UserError } from '../core/validate';
import {
  CheckpointLocation, CheckpointState, checkRunFolder, hasCheckpoint, latestCheckpoint, loadCheckpoint, saveCheckpoint,
} from '../storage/checkpoint';
import { FileError, fsReason, makeDirs, statOrUndefined, userFsCode } from '../storage/files';
import { FolderLock } from '../storage/folderLock';
import { selectedBackend } from '../kernels/backend';
import { describeEstimate, estimateTraining, fitToBudget } from './estimate';
import { checkTrainingFits, TrainData, trainLoop, TrainingView } from './loop';
import { describeRecipe, PROFILES, ProfileName, RunSettings } from './profiles';

/** What a run is asked to do. Every field is optional; unknown ones are refused. */
export interface RunOptions {
  /**
   * The settings to start from: a profile's name (`cpu`, `full`, `tiny`) or settings such as a
   * profile's `exercise`. `train` and `model` below override its fields. @default the chapter's
   */
  profile?: ProfileName | RunSettings;
  /** Training settings (over the profile's). On resume only `numEpochs` and `lr` may differ from the checkpoint. */
  train?: Partial<TrainConfig>;
  /** Model settings (over the profile's); the input size follows `train.resize`, the initial weights `train.seed`. */
  model?: Partial<Omit<NinConfig, 'inputSize' | 'seed'>>;
  /** Use only the first N training examples. @default all, or the profile's */
  trainLimit?: number;
  /** Use only the first N test examples. @default all, or the profile's */
  testLimit?: number;
  /**
   * Seconds a fresh run may take: when a few steps timed here say it would take longer, it
   * trains on fewer images per epoch (and only below a floor, fewer epochs), and says so.
   * @default none, or the profile's
   */
  budgetSeconds?: number;
  /** Save a checkpoint here after every epoch (and when stopped); created if needed. @default none */
  checkpointDir?: string;
  /**
   * `never`: a fresh run, refused if the folder already holds a checkpoint; `always`: continue
   * the folder's checkpoint; `auto`: continue it if there is one, else start fresh (a notebook
   * rerun after a kernel restart). @default 'never'
   */
  resume?: 'never' | 'always' | 'auto';
  /** When the run counts its network as dead. */
  health?: Partial<HealthConfig>;
}

const RUN_OPTION_KEYS: Record<keyof RunOptions, true> = {
  profile: true, train: true, model: true, trainLimit: true, testLimit: true, budgetSeconds: true, checkpointDir: true,
  resume: true, health: true,
};

/** What a run shows as it goes: the loop's callbacks and the run's own. */
export interface RunView extends TrainingView {
  /**
   * Before the first step, with the run (its configs, where it resumes), the epochs already
   * done, and the model being trained (to look inside it as it learns; the run owns it).
   */
  onStart?: (run: TrainingRun, done: EpochResult[], model: tfl.LayersModel) => void | Promise<void>;
  /** A line worth telling before training (the time estimate, what a budget cut). */
  onNote?: (note: string) => void;
  /** After each checkpoint is written. */
  onSaved?: (checkpoint: CheckpointLocation) => void;
}

/** How a run ended. The caller owns `model` and disposes it. */
export interface RunResult {
  history: TrainHistory;
  model: tfl.LayersModel;
  /** The config `model` was built from (`nin(modelConfig)` builds it again, untrained). */
  modelConfig: NinConfig;
  /** The examples of each split it trained and tested on: the first ones of the data given. */
  examples: { train: number; test: number };
  /** The last checkpoint written, when there is a folder. */
  saved?: CheckpointLocation;
}

/** The checkpoint a run resumes from, as read when it was opened. */
export type ResumePoint = CheckpointLocation & { state: CheckpointState; recovered?: string };

/** Opens a run (see {@link TrainingRun.open}) and trains it on `data`. */
export async function trainNin(options: RunOptions, data: TrainData, view: RunView = {}, signal?: AbortSignal): Promise<RunResult> {
  return TrainingRun.open(options).train(data, view, signal);
}

/** A run checked and ready: its configs, where it resumes from, and the folder it holds. */
export class TrainingRun {
  private released = false;

  private constructor(
    private trainConfig: TrainConfig,
    /** The model config, resolved. */
    readonly model: NinConfig,
    /** The examples of each split to train and test on (a resumed run: its checkpoint's). */
    readonly limits: { trainLimit?: number; testLimit?: number },
    /** The checkpoint resumed from; undefined for a fresh run. */
    readonly resumed: ResumePoint | undefined,
    private readonly options: RunOptions,
    private readonly folder?: HeldFolder,
  ) {}

  /**
   * Checks every option and the checkpoint folder and takes the folder: everything that can
   * be refused is refused here, before any data is loaded. The run holds the folder's lock
   * until {@link train} ends or {@link release}.
   */
  static open(options: RunOptions): TrainingRun {
    const given = checkRunOptions(options);
    const fresh = freshConfigs(given);
    const folder = given.checkpointDir === undefined ? undefined : holdFolder(given.checkpointDir, given.mode === 'always');
    try {
      const found = folder && findResumePoint(folder.dir, given.mode);
      if (found === undefined) return new TrainingRun(fresh.train, fresh.model, given.limits, undefined, options, folder);
      const configs = resumeConfigs(found.state, given, folder!.dir);
      const limits = { trainLimit: found.state.data.trainCount, testLimit: found.state.data.testCount };
      checkLimits(given.limits, limits, folder!.dir);
      return new TrainingRun(configs.train, configs.model, limits, found, options, folder);
    } catch (err) {
      folder?.release();
      throw err;
    }
  }

  /** The training config, resolved (a budget may have cut its epochs when training started). */
  get config(): TrainConfig {
    return this.trainConfig;
  }

  /** The checkpoint folder, resolved; undefined without one. */
  get checkpointDir(): string | undefined {
    return this.folder?.dir;
  }

  /** Throws unless this run still holds its checkpoint folder (before every save). */
  assertHoldsFolder(): void {
    this.folder?.lock.assertHeld();
  }

  /** Lets go of the checkpoint folder ({@link train} does it when it ends). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.folder?.release();
  }

  /**
   * Trains on the first examples of `data` the run takes (or of what the function gives: the
   * folder is let go however loading fails): fresh or from its checkpoint,
   * saving after every epoch and, when `signal` stops it, at the step where it stopped. A
   * dead or diverged network stops the run with its error, naming the last good checkpoint.
   * Releases the checkpoint folder when it ends, however it ends.
   */
  async train(data: TrainData | (() => Promise<TrainData>), view: RunView = {}, signal?: AbortSignal): Promise<RunResult> {
    try {
      if (this.released) throw new ConfigError('this run has ended; open a new one to train again');
      const split = this.fitData(typeof data === 'function' ? await data() : data, view);
      const { model, optimizer } = await this.startingPoint(view);
      const saver = new Saver(this, split, model, optimizer, view);
      try {
        const done = this.resumed?.state.history ?? [];
        await view.onStart?.(this, done, model);
        const history = await trainLoop(model, split, this.config, {
          onBatchEnd: view.onBatchEnd,
          onWarning: view.onWarning,
          onEpochEnd: async (r, h) => {
            await saver.save(h);
            await view.onEpochEnd?.(r, h);
          },
        }, {
          optimizer, signal, resume: { epochs: done, partial: this.resumed?.state.partial },
          health: new HealthMonitor(model, this.config.lr, this.options.health),
        });
        if (history.interrupted && this.progressed(history)) await saver.save(history, history.interrupted);
        const examples = { train: split.train.count, test: split.test.count };
        return { history, model, modelConfig: this.model, examples, saved: saver.last };
      } catch (err) {
        model.dispose();
        throw saver.withLastGood(err);
      } finally {
        disposeOptimizer(optimizer);
      }
    } finally {
      this.release();
    }
  }

  /** Whether `history` went past where the run started (a stop before its first step has nothing new to save). */
  private progressed(history: TrainHistory): boolean {
    const start = this.resumed?.state;
    const at = history.interrupted?.steps ?? 0;
    return history.epochs.length > (start?.epochsCompleted ?? 0) || at > (start?.steps ?? 0);
  }

  /** The run's share of `data`: its limits, and for a fresh run with a budget, what fits it (said through the view). */
  private fitData(data: TrainData, view: RunView): TrainData {
    const { trainLimit = data.train.count, testLimit = data.test.count } = this.limits;
    if (data.train.count < trainLimit || data.test.count < testLimit) {
      const whose = this.resumed ? `the checkpoint in ${this.checkpointDir} was` : 'the run is';
      throw new ConfigError((n, nameOf) => `${whose} to train on ${trainLimit} training / ${testLimit} test examples, but the data ` +
        `holds ${data.train.count} / ${data.test.count}; use the same data and limits (${n}, ${nameOf('testLimit')}) as the first run`,
      'trainLimit');
    }
    // A fresh run with a budget measures how long it would take (and a view that takes notes is told).
    let trainCount = trainLimit;
    if (this.resumed === undefined && (this.budgetSeconds !== undefined || view.onNote)) trainCount = this.fitBudget(trainLimit, testLimit, view);
    return { train: sliceSplit(data.train, 0, trainCount), test: sliceSplit(data.test, 0, testLimit) };
  }

  /** Times a few steps here; fewer images (then epochs) when the run would overrun its budget. */
  private fitBudget(trainCount: number, testCount: number, view: RunView): number {
    const estimate = estimateTraining(this.config, trainCount, testCount);
    view.onNote?.(describeEstimate(estimate));
    const profile = this.options.profile;
    const whose = typeof profile === 'string' && this.options.budgetSeconds === undefined ? `the ${profile} profile's` : 'the run\'s';
    const fit = fitToBudget(estimate, { seconds: this.budgetSeconds, whose });
    if (fit.note) view.onNote?.(fit.note);
    this.trainConfig = { ...this.trainConfig, numEpochs: fit.epochs };
    return fit.trainCount;
  }

  /** Seconds a fresh run may take (the options', else the profile's); undefined: no budget. */
  get budgetSeconds(): number | undefined {
    return this.options.budgetSeconds ?? profileSettings(this.options.profile)?.budgetSeconds;
  }

  /** The model and optimizer the run starts from: fresh, or the checkpoint's. */
  private async startingPoint(view: RunView): Promise<{ model: tfl.LayersModel; optimizer: NinOptimizer }> {
    if (this.resumed === undefined) {
      const model = nin(this.model);
      try {
        checkTrainingFits(model); // before the first batch is resized
      } catch (err) {
        model.dispose();
        throw err;
      }
      return { model, optimizer: makeOptimizer(this.config) };
    }
    const loaded = await loadCheckpoint(this.resumed, this.config);
    loaded.warnings.forEach((w) => view.onWarning?.(new UserError(w)));
    return { model: loaded.model, optimizer: loaded.optimizer };
  }

  /** The active backend in words, as checkpoints record it. */
  get backend(): string {
    return selectedBackend()?.description ?? tf.getBackend();
  }
}

// ---------------------------------------------------------------------------------------------
// Options

/** The options of a run, checked, with the profile's settings under them. */
export interface GivenOptions {
  train: Partial<TrainConfig>;
  /** What the caller set itself, not the profile: on resume, the profile's epochs yield to the checkpoint's. */
  explicitTrain: Partial<TrainConfig>;
  model: Partial<NinConfig>;
  limits: { trainLimit?: number; testLimit?: number };
  checkpointDir?: string;
  mode: 'never' | 'always' | 'auto';
}

/** A profile's settings by name (or as given). */
export function profileSettings(profile: RunOptions['profile']): RunSettings | undefined {
  if (profile === undefined || typeof profile === 'object') return profile;
  if (!Object.keys(PROFILES).includes(profile)) {
    throw new ConfigError((n) => `${n} must be one of ${Object.keys(PROFILES).join(', ')}, got ${JSON.stringify(profile)}`, 'profile');
  }
  return PROFILES[profile];
}

/** Refuses unknown or malformed options, naming them; the configs themselves are resolved next. */
export function checkRunOptions(options: RunOptions): GivenOptions {
  if (options === null || typeof options !== 'object') throw new ConfigError(`the run's options must be an object, got ${String(options)}`);
  knownKeys('run', options, RUN_OPTION_KEYS);
  for (const part of ['train', 'model', 'health'] as const) {
    const value = options[part];
    if (value !== undefined && (value === null || typeof value !== 'object')) {
      throw new ConfigError((n) => `${n} must be an object of settings, got ${String(value)}`, part);
    }
  }
  if (options.model && 'seed' in options.model) {
    throw new ConfigError((_, nameOf) => `a run's model starts from the run's seed; set ${nameOf('seed')} instead of the model's`, 'seed');
  }
  const p = profileSettings(options.profile);
  const limits = { trainLimit: options.trainLimit ?? p?.trainLimit, testLimit: options.testLimit ?? p?.testLimit };
  if (limits.trainLimit !== undefined) positiveInt('trainLimit', limits.trainLimit);
  if (limits.testLimit !== undefined) positiveInt('testLimit', limits.testLimit);
  if (options.budgetSeconds !== undefined) positiveFinite('budgetSeconds', options.budgetSeconds);
  const dir = options.checkpointDir;
  if (dir !== undefined && (typeof dir !== 'string' || dir.trim() === '')) {
    throw new ConfigError((n) => `${n} must name a folder, got ${JSON.stringify(dir)}`, 'checkpointDir');
  }
  const mode = options.resume ?? 'never';
  if (!['never', 'always', 'auto'].includes(mode)) {
    throw new ConfigError((n) => `${n} must be one of never, always, auto, got ${JSON.stringify(mode)}`, 'resume');
  }
  if (mode === 'always' && dir === undefined) {
    throw new ConfigError((n, nameOf) => `${n} needs ${nameOf('checkpointDir')}, the folder a run saved its checkpoints in`, 'resume');
  }
  return {
    train: { ...p?.train, ...given(options.train) }, explicitTrain: given(options.train), model: { ...p?.model, ...given(options.model) },
    limits, checkpointDir: dir === undefined ? undefined : checkRunFolder(dir), mode,
  };
}

/** The fields of `part` that were given (a field set to undefined leaves the profile's or the default). */
function given<T extends object>(part: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(part ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The configs of a fresh run: resolved once, the model built for the run's image size and seed. */
function freshConfigs(given: GivenOptions): { train: TrainConfig; model: NinConfig } {
  const train = resolveTrainConfig(given.train);
  return { train, model: resolveNinConfig({ ...given.model, inputSize: train.resize, seed: train.seed }) };
}

/** Fields a resumed run may change: more epochs, and a new (peak) learning rate. */
const MAY_CHANGE = new Set(['numEpochs', 'lr']);

/**
 * The configs a resumed run continues with: the checkpoint's, with `numEpochs` and `lr` taken
 * from what was given (a smaller learning rate after a divergence is a resume; with a
 * schedule, `lr` is its new peak and more epochs stretch it). Any other field given that
 * differs from the checkpoint is a ConfigError carrying that field, as is asking for no more
 * epochs than are done (unless resuming whatever there is: a notebook rerun finds its run
 * complete).
 */
export function resumeConfigs(state: CheckpointState, given: GivenOptions, dir: string): { train: TrainConfig; model: NinConfig } {
  const saved = resolveTrainConfig(state.train);
  const model = resolveNinConfig(state.model);
  const compare = (part: object, kept: Record<string, unknown>) => {
    for (const [name, value] of Object.entries(part)) {
      if (value === undefined || MAY_CHANGE.has(name) || value === kept[name]) continue;
      throw new ConfigError((n) => `cannot resume from ${dir}: ${n} ${String(value)} differs from the checkpoint's ` +
        `${String(kept[name])}; leave ${n} out to continue with ${String(kept[name])}, or start afresh in another checkpoint directory`, name);
    }
  };
  compare(given.train, saved as unknown as Record<string, unknown>);
  compare(given.model, model as unknown as Record<string, unknown>);
  const numEpochs = given.explicitTrain.numEpochs ?? saved.numEpochs;
  const train = resolveTrainConfig({ ...saved, numEpochs, lr: given.train.lr ?? saved.lr });
  const done = state.epochsCompleted;
  if (numEpochs < done || (numEpochs === done && state.steps === 0 && given.mode !== 'auto')) {
    throw new ConfigError((n) => `the checkpoint in ${dir} has already completed ${done} epoch${done === 1 ? '' : 's'}` +
      `${given.explicitTrain.numEpochs === undefined ? '' : ` (asked for ${numEpochs})`}; pass ${n} N with N > ${done} to train further`,
    'numEpochs');
  }
  return { train, model };
}

/** A resumed run's data limits must be its checkpoint's: any other given is refused, naming it. */
function checkLimits(given: GivenOptions['limits'], saved: { trainLimit: number; testLimit: number }, dir: string): void {
  for (const name of ['trainLimit', 'testLimit'] as const) {
    if (given[name] === undefined || given[name] === saved[name]) continue;
    const asked = { trainLimit: given.trainLimit ?? saved.trainLimit, testLimit: given.testLimit ?? saved.testLimit };
    throw new ConfigError((n) => `cannot resume from ${dir}: it was trained on ${saved.trainLimit} training / ${saved.testLimit} ` +
      `test examples, this data has ${asked.trainLimit} / ${asked.testLimit} (${n} ${given[name]}); leave ${n} out to use the checkpoint's`, name);
  }
}

// ---------------------------------------------------------------------------------------------
// The checkpoint folder

interface HeldFolder {
  dir: string;
  lock: FolderLock;
  release(): void;
}

/**
 * Takes the checkpoint folder: creates it if needed (not when it must hold a checkpoint to
 * resume from) and takes its lock. `release` lets go, and removes the folder again if this
 * run created it and left nothing in it.
 */
function holdFolder(dir: string, mustExist: boolean): HeldFolder {
  const stat = statOrUndefined(dir, 'checkpoint directory');
  if (stat && !stat.isDirectory()) {
    throw new ConfigError((n) => `${n} ${dir} is not a directory; choose another`, 'checkpointDir');
  }
  if (!stat && mustExist) {
    throw new ConfigError((n) => `checkpoint directory ${dir} does not exist; train without ${n} to create it ` +
      '(a run saves its first checkpoint at the end of epoch 1)', 'resume');
  }
  try {
    makeDirs(dir);
  } catch (err) {
    throw new FileError(`checkpoint directory ${dir} cannot be created ${fsReason(err)}; choose another`, userFsCode(err));
  }
  const lock = FolderLock.acquire(dir);
  return {
    dir,
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

/** The checkpoint a run in `dir` continues from, read once; undefined when it starts fresh. */
function findResumePoint(dir: string, mode: GivenOptions['mode']): ResumePoint | undefined {
  if (mode === 'always') return latestCheckpoint(dir);
  const holds = hasCheckpoint(dir);
  if (!holds) return undefined;
  if (mode === 'never') {
    throw new ConfigError((n) => `${dir} already holds a checkpoint; add ${n} to continue it, or choose another ` +
      'checkpoint directory (or delete that one) to start afresh', 'resume');
  }
  return latestCheckpoint(dir);
}

/** Writes a run's checkpoints and knows the last good one. */
class Saver {
  last?: CheckpointLocation;
  private lastWords: string | undefined;

  constructor(
    private readonly run: TrainingRun, private readonly data: TrainData, private readonly model: tfl.LayersModel,
    private readonly optimizer: tf.Optimizer, private readonly view: RunView,
  ) {
    const s = run.resumed?.state;
    this.lastWords = s && describePosition(s.epochsCompleted, s.partial);
  }

  /** Saves the run's position (no-op without a folder), then removes the older checkpoints. */
  async save(history: TrainHistory, partial?: PartialEpoch): Promise<void> {
    const dir = this.run.checkpointDir;
    if (dir === undefined) return;
    this.run.assertHoldsFolder();
    const c = await saveCheckpoint(dir, this.model, {
      history: history.epochs, partial, train: this.run.config, model: this.run.model,
      data: { trainCount: this.data.train.count, testCount: this.data.test.count }, backend: this.run.backend,
    }, this.optimizer);
    this.last = c;
    this.lastWords = describePosition(history.epochs.length, partial);
    c.warnings.forEach((w) => this.view.onWarning?.(new UserError(w)));
    this.view.onSaved?.(c);
  }

  /** `err` with the last good checkpoint named (in its message and as data), for the failures a user acts on. */
  withLastGood(err: unknown): unknown {
    const dir = this.run.checkpointDir;
    if (dir === undefined || !(err instanceof UnhealthyError || err instanceof FileError)) return err;
    const kept = this.lastWords === undefined
      ? 'no checkpoint was saved (no epoch completed)'
      : `the last good checkpoint (${this.lastWords}) stays in ${dir}`;
    if (err instanceof FileError) return new FileError(`${err.message}; ${kept}`, err.code);
    const Same = err.constructor as typeof UnhealthyError;
    return new Same((_, nameOf) => `${err.messageFor(nameOf)}; ${kept}`, err.position, this.lastWords, err.suggestedLr);
  }
}

/** What a run is about to do, in words: where it resumes from, and the recipe. */
export function describeRun(run: TrainingRun): string {
  const c = run.config;
  const lines: string[] = [];
  const s = run.resumed;
  if (s) {
    const trainedOn = s.state.backend;
    lines.push(`resuming from ${run.checkpointDir} (${describePosition(s.state.epochsCompleted, s.state.partial)})` +
      `${s.state.train.lr !== c.lr ? `, lr ${s.state.train.lr} → ${c.lr}` : ''}` +
      `${trainedOn && trainedOn !== run.backend ? `; trained so far on ${trainedOn}, so the numbers will not ` +
        'match a run on one backend to the last bit' : ''}`);
    if (s.recovered) lines.push(`  (${s.recovered})`);
  }
  lines.push(`training NiN: ${describeRecipe(run.config, run.model)}`);
  return lines.join('\n');
}
