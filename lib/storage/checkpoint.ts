/**
 * Checkpoints: a model in TensorFlow.js layers format plus the state a run needs to continue.
 *
 * A checkpoint directory looks like
 *
 *   DIR/latest.json            {"checkpoint": "epoch-0002", ...}: the last complete checkpoint
 *   DIR/epoch-0002/model.json  layers-model topology + weightsManifest (tf.loadLayersModel reads it)
 *   DIR/epoch-0002/weights.bin the weights, float32, in manifest order
 *   DIR/epoch-0002/state.json  epochs done, history, configs, seed, optimizer
 *   DIR/epoch-0002/optimizer.bin  the optimizer's per-weight state (momentum's velocity, Adam's
 *                              two moving averages), float32, in the order state.json lists
 *                              it; absent for plain SGD
 *
 * A run stopped mid-epoch (Ctrl-C) saves `epoch-0002-step-000013`: epoch 2 complete and 13
 * steps of epoch 3. Writing is atomic: files go into `NAME.tmp-PID/`, are fsynced, and the
 * folder is renamed into place; then `latest.json` is replaced the same way (written aside,
 * renamed). A process killed at any moment leaves `latest.json` naming a complete checkpoint.
 *
 * Only what a run wrote is ever removed: folders named like a checkpoint that hold this
 * format's state.json, and the leftovers of its own killed writes (`epoch-….tmp-PID`,
 * `latest.json.tmp-PID`). Anything else in the folder is left alone. When `latest.json` is
 * missing, damaged or names a missing folder, the newest complete checkpoint folder is used.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { numBatches } from '../core/fashionMnist';
import { FileError, fsReason, isObject, readJson, replaceFile, statOrUndefined, syncDir, userFsCode, writeSynced } from './files';
import { DivergedError, nonFiniteWeights } from '../core/health';
import { loadLayersModelFromFolder, MODEL_FILE, saveLayersModel, WEIGHTS_FILE } from './layersFolder';
import { nin, NinConfig, resolveNinConfig } from '../core/model';
import { learningRateAt, optimizerKind, hasOptimizerState } from '../core/optimizers';
import { OPTIMIZER_FILE, OptimizerState, optimizerSlots, restoreOptimizer } from './optimizerState';
import type { EpochResult, PartialEpoch } from '../training/loop';
import { resolveTrainConfig, TrainConfig } from '../core/trainConfig';
import { ConfigError } from '../core/validate';

/** `format` of state.json and latest.json. */
export const CHECKPOINT_FORMAT = 'nin-tfjs-checkpoint';
/** Bumped when state.json changes incompatibly (2: the optimizer's state is saved). */
export const CHECKPOINT_VERSION = 2;
/** The pointer to the last complete checkpoint. */
export const LATEST_FILE = 'latest.json';
/** A checkpoint's {@link CheckpointState}. */
export const STATE_FILE = 'state.json';

/** What the caller knows about a run; {@link saveCheckpoint} adds the rest of {@link CheckpointState}. */
export interface CheckpointContents {
  /** Results of the completed epochs (the history so far). */
  history: EpochResult[];
  /** Steps of the next epoch already done, when the run stopped mid-epoch. */
  partial?: PartialEpoch;
  /** The run's training config. */
  train: TrainConfig;
  /** The config the model was built from. */
  model: NinConfig;
  /** Sizes of the splits trained and evaluated on; a resumed run must use the same. */
  data: { trainCount: number; testCount: number };
  /**
   * The backend that trained it, as `selectBackend` describes it (kernels and thread counts).
   * Information only: another backend may resume the run, rounding differently.
   */
  backend?: string;
}

/** state.json: everything besides the weights that a resumed run needs, and a record of the run. */
export interface CheckpointState extends CheckpointContents {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** ISO time of saving. */
  savedAt: string;
  /** Epochs completed (= history.length). */
  epochsCompleted: number;
  /** Steps done of epoch `epochsCompleted + 1` (0 at an epoch boundary). */
  steps: number;
  /** The optimizer; its slot variables, if any, are in optimizer.bin. */
  optimizer: OptimizerState;
  /**
   * The random state. There is no generator state to save: the shuffle of epoch e is drawn
   * from `deriveSeed(seed, e)` and the dropout masks of step s from `deriveSeed(seed, e, s,
   * piece)`, so (seed, epoch, step) determine everything that follows.
   */
  random: { seed: number; derivation: string };
}

/** latest.json. */
export interface CheckpointPointer {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** Folder name of the last complete checkpoint, e.g. `epoch-0002`. */
  checkpoint: string;
  epochsCompleted: number;
  steps: number;
  savedAt: string;
}

/** Where a checkpoint lives. */
export interface CheckpointLocation {
  /** The checkpoint directory given. */
  dir: string;
  /** Folder name, e.g. `epoch-0002` or `epoch-0002-step-000013`. */
  name: string;
  /** Full path of that folder. */
  path: string;
}


const CHECKPOINT_FOLDER = /^epoch-(\d{4,})(?:-step-(\d{6,}))?$/;
/** Leftovers of this format's own killed writes; nothing else named *.tmp-N is touched. */
const LEFTOVER = /^(epoch-\d{4,}(-step-\d{6,})?|latest\.json)\.tmp-\d+$/;

/** Folder name for a position: `epoch-0002` (2 epochs done), `epoch-0002-step-000013` (+13 steps). */
export function checkpointName(epochsCompleted: number, steps = 0): string {
  const e = `epoch-${String(epochsCompleted).padStart(4, '0')}`;
  return steps > 0 ? `${e}-step-${String(steps).padStart(6, '0')}` : e;
}

/** A checkpoint folder name's position, for ordering: epochs × 1e7 + steps. */
function position(name: string): number {
  const m = CHECKPOINT_FOLDER.exec(name);
  return m ? Number(m[1]) * 1e7 + Number(m[2] ?? 0) : -1;
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Saves a checkpoint of `model`, `optimizer` and `contents` in `dir` (created if needed) and
 * points latest.json at it; see the module comment for the layout and why a kill cannot
 * corrupt it. Saving the position latest.json already names is a no-op. Refuses weights or
 * optimizer state that are NaN or infinite (a DivergedError). A write that fails (a full
 * disk, a permission) leaves nothing half-written and throws a FileError saying how much room
 * a save needs. The optimizer may be left out for plain SGD (it has no state to save), not
 * with momentum or Adam. Then this format's older checkpoints are removed
 * ({@link cleanCheckpointDir}); `warnings` lists any that could not be.
 */
export async function saveCheckpoint(
  dir: string, model: tfl.LayersModel, contents: CheckpointContents, optimizer?: tf.Optimizer,
): Promise<CheckpointLocation & { state: CheckpointState; bytes: number; warnings: string[] }> {
  if (optimizer === undefined && hasOptimizerState(contents.train)) {
    throw new Error(`saveCheckpoint: a run with ${optimizerKind(contents.train)} must pass its optimizer, whose state ` +
      'the checkpoint keeps');
  }
  const slots = optimizer === undefined ? { slots: [], bytes: new Uint8Array(0) } : await optimizerSlots(optimizer);
  refuseNonFinite(dir, model, slots.bytes);
  const state = checkpointState(contents, slots.slots, slots.betaPowers);
  const name = checkpointName(state.epochsCompleted, state.steps);
  const target = path.join(dir, name);
  if (readPointerIfAny(dir)?.checkpoint === name && fs.existsSync(target)) {
    return { dir, name, path: target, state: readState(path.join(target, STATE_FILE), damaged(dir)), bytes: 0, warnings: [] };
  }
  const tmp = `${target}.tmp-${process.pid}`;
  let bytes = slots.bytes.byteLength;
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.rmSync(tmp, { recursive: true, force: true });
    bytes += await saveLayersModel(model, tmp);
    if (slots.slots.length > 0) writeSynced(path.join(tmp, OPTIMIZER_FILE), slots.bytes);
    const stateJson = `${JSON.stringify(state, null, 2)}\n`;
    writeSynced(path.join(tmp, STATE_FILE), stateJson);
    bytes += stateJson.length;
    syncDir(tmp);
    if (fs.existsSync(target)) removeOurs(dir, name); // a complete folder a killed run renamed but never pointed at
    fs.renameSync(tmp, target);
    syncDir(dir);
    replaceFile(path.join(dir, LATEST_FILE), `${JSON.stringify(pointerTo(name, state), null, 2)}\n`, dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (userFsCode(err) === undefined) throw err;
    const need = (model.countParams() * 4 + slots.bytes.byteLength) / 2 ** 20; // weights + optimizer state
    throw new FileError(`cannot save a checkpoint in ${dir} ${fsReason(err)}; a save needs about ${Math.ceil(need)} MB ` +
      'there, and the checkpoints already in it are as they were', userFsCode(err));
  }
  return { dir, name, path: target, state, bytes, warnings: cleanCheckpointDir(dir, name) };
}

function pointerTo(name: string, state: CheckpointState): CheckpointPointer {
  return {
    format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, checkpoint: name,
    epochsCompleted: state.epochsCompleted, steps: state.steps, savedAt: state.savedAt,
  };
}

/**
 * Throws a DivergedError when a weight or an optimizer slot is NaN or infinite: such a
 * checkpoint could only replace a good one with a broken one.
 */
function refuseNonFinite(dir: string, model: tfl.LayersModel, slotBytes: Uint8Array): void {
  const weights = nonFiniteWeights(model);
  const slots = new Float32Array(slotBytes.buffer, slotBytes.byteOffset, slotBytes.byteLength / 4);
  const badSlots = slots.reduce((n, v) => (Number.isFinite(v) ? n : n + 1), 0);
  if (weights.count === 0 && badSlots === 0) return;
  const what = weights.count > 0
    ? `${weights.count.toLocaleString('en-US')} of ${weights.total.toLocaleString('en-US')} weights (first in ${weights.layers[0]})`
    : `${badSlots.toLocaleString('en-US')} of the optimizer's ${slots.length.toLocaleString('en-US')} state values`;
  throw new DivergedError(`not saving a checkpoint in ${dir}: ${what} are NaN or infinite; the checkpoints already ` +
    'there are left as they were');
}

function checkpointState(
  c: CheckpointContents, slots: OptimizerState['slots'], betaPowers?: [number, number],
): CheckpointState {
  const steps = c.partial?.steps ?? 0;
  const perEpoch = numBatches(c.data.trainCount, c.train.batchSize);
  const iterations = c.history.length * perEpoch + steps;
  return {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    savedAt: new Date().toISOString(),
    epochsCompleted: c.history.length,
    steps,
    ...c,
    partial: steps > 0 ? c.partial : undefined,
    optimizer: {
      name: optimizerKind(c.train), lr: learningRateAt(c.train, iterations, perEpoch),
      momentum: c.train.momentum, iterations, slots, betaPowers,
    },
    random: { seed: c.train.seed, derivation: 'order of epoch e: deriveSeed(seed, e); dropout of step s, piece p: deriveSeed(seed, e, s, p)' },
  };
}

/** Whether `dir/name` is a checkpoint folder this format wrote (its state.json says so). */
function isOurCheckpoint(dir: string, name: string): boolean {
  if (!CHECKPOINT_FOLDER.test(name)) return false;
  try {
    const state = JSON.parse(fs.readFileSync(path.join(dir, name, STATE_FILE), 'utf8')) as unknown;
    return isObject(state) && state.format === CHECKPOINT_FORMAT;
  } catch {
    return false;
  }
}

/** Removes `dir/name` if it is a checkpoint of ours or a leftover of our killed writes. */
function removeOurs(dir: string, name: string): void {
  if (LEFTOVER.test(name) || isOurCheckpoint(dir, name)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
}

/**
 * Removes this format's checkpoint folders of `dir` other than `keep`, and the leftovers of
 * its killed writes; nothing else. Returns one line for each entry that could not be removed
 * (a permission, a read-only disk): the checkpoint `keep` is complete all the same. Call it
 * only while holding the folder (see lib/folderLock.ts): another run's write in progress
 * would look like a leftover.
 */
export function cleanCheckpointDir(dir: string, keep: string): string[] {
  const problems: string[] = [];
  for (const entry of fs.readdirSync(dir)) {
    if (entry === keep) continue;
    try {
      removeOurs(dir, entry);
    } catch (err) {
      problems.push(`could not remove the old ${path.join(dir, entry)} ${fsReason(err)}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** What to do about a damaged checkpoint of `dir`, in words. */
const damaged = (dir: string) => `the checkpoint is damaged: delete ${dir} to start afresh, or resume from another checkpoint directory`;

/** latest.json of `dir`, or undefined when there is none (a missing dir counts as none). */
function readPointerIfAny(dir: string): CheckpointPointer | undefined {
  const file = path.join(dir, LATEST_FILE);
  if (!fs.existsSync(file)) return undefined;
  const fix = 'it should name the last complete checkpoint folder';
  const value = readJson(file, fix);
  if (!isObject(value) || value.format !== CHECKPOINT_FORMAT || typeof value.checkpoint !== 'string' ||
      !CHECKPOINT_FOLDER.test(value.checkpoint)) {
    throw new ConfigError(`${file} is not a ${CHECKPOINT_FORMAT} pointer (no "checkpoint": "epoch-NNNN"); ${fix}`);
  }
  return value as unknown as CheckpointPointer;
}

/** This format's complete checkpoint folders in `dir` (valid state.json, model and weights), newest first. */
function completeCheckpoints(dir: string): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((name) => isOurCheckpoint(dir, name) && [MODEL_FILE, WEIGHTS_FILE].every((f) => fs.existsSync(path.join(dir, name, f))))
    .filter((name) => {
      try {
        readState(path.join(dir, name, STATE_FILE), '');
        return true;
      } catch {
        return false;
      }
    })
    .sort((a, b) => position(b) - position(a));
}

/** Whether `dir` holds a checkpoint: a pointer (latest.json), complete or not, or a complete checkpoint folder. */
export function hasCheckpoint(dir: string): boolean {
  return fs.existsSync(path.join(dir, LATEST_FILE)) || completeCheckpoints(dir).length > 0;
}

/**
 * The last complete checkpoint of `dir`: the folder latest.json names, checked; when the
 * pointer is missing, damaged or names a folder that is missing or damaged, the newest
 * complete checkpoint folder, with `recovered` saying why.
 */
export function latestCheckpoint(dir: string): CheckpointLocation & { state: CheckpointState; recovered?: string } {
  const stat = statOrUndefined(dir, 'checkpoint directory');
  if (!stat) {
    throw new ConfigError(`checkpoint directory ${dir} does not exist; train without --resume to create it ` +
      '(a run saves its first checkpoint at the end of epoch 1)');
  }
  if (!stat.isDirectory()) throw new ConfigError(`checkpoint directory ${dir} is not a directory; name the folder a run saved into`);
  let problem: ConfigError;
  try {
    const pointer = readPointerIfAny(dir);
    if (pointer === undefined) {
      problem = new ConfigError(`${dir} holds no complete checkpoint yet (no ${LATEST_FILE}, and no complete epoch-NNNN ` +
        'folder; a run writes its first at the end of epoch 1); train without --resume to start afresh');
    } else {
      const folder = path.join(dir, pointer.checkpoint);
      if (!fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory()) {
        problem = new ConfigError(`${path.join(dir, LATEST_FILE)} names ${pointer.checkpoint}, which is missing from ${dir}, ` +
          'and no other complete checkpoint is there; start afresh in a new checkpoint directory');
      } else {
        return { dir, name: pointer.checkpoint, path: folder, state: readState(path.join(folder, STATE_FILE), damaged(dir)) };
      }
    }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problem = err;
  }
  const newest = completeCheckpoints(dir)[0];
  if (newest === undefined) throw problem;
  const folder = path.join(dir, newest);
  return {
    dir, name: newest, path: folder, state: readState(path.join(folder, STATE_FILE), damaged(dir)),
    recovered: `${problem.message.split(';')[0]}; using ${newest}, the newest complete checkpoint there`,
  };
}

/** Reads and checks state.json; every problem is a one-line ConfigError naming the file. */
function readState(file: string, fix: string): CheckpointState {
  const value = readJson(file, fix);
  if (!isObject(value) || value.format !== CHECKPOINT_FORMAT) {
    throw new ConfigError(`${file} is not a ${CHECKPOINT_FORMAT} state file; ${fix}`);
  }
  if (value.version !== CHECKPOINT_VERSION) {
    throw new ConfigError(`${file} has checkpoint version ${String(value.version)}; this nin reads version ` +
      `${CHECKPOINT_VERSION}: use the nin that wrote it, or start afresh`);
  }
  let train: TrainConfig;
  try {
    train = resolveTrainConfig(value.train as Partial<TrainConfig>);
    resolveNinConfig(value.model as Partial<NinConfig>);
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message}; ${fix}`);
  }
  const data = value.data as { trainCount?: unknown; testCount?: unknown } | undefined;
  const history = value.history;
  const steps = value.steps;
  if (!Array.isArray(history) || !history.every((e, i) => isObject(e) && e.epoch === i + 1) ||
      value.epochsCompleted !== history.length || typeof steps !== 'number' || !Number.isInteger(steps) || steps < 0 ||
      !isObject(data) || !Number.isInteger(data.trainCount) || !Number.isInteger(data.testCount) ||
      (steps > 0 && !(isObject(value.partial) && value.partial.steps === steps && value.partial.epoch === history.length + 1))) {
    throw new ConfigError(`${file} has an inconsistent history, position or data sizes; ${fix}`);
  }
  const opt = value.optimizer;
  const kind = optimizerKind(train);
  const betas = isObject(opt) ? opt.betaPowers : undefined;
  if (!isObject(opt) || opt.name !== kind || !Array.isArray(opt.slots) ||
      !opt.slots.every((s) => isObject(s) && typeof s.name === 'string' && Array.isArray(s.shape) &&
        s.shape.every((d) => Number.isInteger(d) && d >= 0)) ||
      (kind === 'adam' && !(Array.isArray(betas) && betas.length === 2 && betas.every((b) => typeof b === 'number' && b > 0 && b < 1)))) {
    throw new ConfigError(`${file} has no valid optimizer record (its name must match the training config's optimizer ` +
      `and momentum${kind === 'adam' ? ', and Adam needs its betaPowers' : ''}); ${fix}`);
  }
  return value as unknown as CheckpointState;
}

/** The state of the last complete checkpoint of `dir`, without loading the model. */
export function readCheckpointState(dir: string): ReturnType<typeof latestCheckpoint> {
  return latestCheckpoint(dir);
}

/**
 * Throws a ConfigError unless `model` is the NiN that `config` describes (same weights, same
 * shapes): a foreign model dropped into a checkpoint folder is not resumed as NiN.
 */
function checkIsNin(model: tfl.LayersModel, config: NinConfig, folder: string): void {
  const expected = nin(config);
  const shapes = (m: tfl.LayersModel) => m.weights.map((w) => `${w.originalName}:${w.shape.join('x')}`).join(',');
  const same = shapes(expected) === shapes(model);
  expected.dispose();
  if (!same) {
    throw new ConfigError(`${path.join(folder, MODEL_FILE)} is not the NiN its state.json describes (other layers or ` +
      'weight shapes); resume only from checkpoints nin train wrote');
  }
}

/**
 * Loads the last complete checkpoint of `dir` for resuming: its model (weights as saved,
 * checked to be the NiN its state describes), state, and optimizer (built for `train`, by
 * default the checkpoint's own training config, with the saved step counter and slots). The
 * caller disposes the model and the optimizer ({@link disposeOptimizer}). Leftovers of killed
 * writes and this format's older checkpoints are removed.
 */
export async function loadCheckpoint(dir: string, train?: TrainConfig): Promise<CheckpointLocation & {
  model: tfl.LayersModel; optimizer: tf.Optimizer; state: CheckpointState; recovered?: string; warnings: string[];
}> {
  const { state, ...location } = latestCheckpoint(dir);
  const model = await loadLayersModelFromFolder(location.path, damaged(dir));
  let optimizer: tf.Optimizer;
  try {
    checkIsNin(model, resolveNinConfig(state.model), location.path);
    optimizer = await restoreOptimizer(location.path, state.optimizer, train ?? resolveTrainConfig(state.train), model, damaged(dir));
  } catch (err) {
    model.dispose();
    throw err;
  }
  const warnings = cleanCheckpointDir(dir, location.name);
  return { ...location, model, optimizer, state, warnings };
}

/** What {@link loadModelFromDir} found. */
export interface LoadedModel {
  model: tfl.LayersModel;
  /** The folder model.json was read from. */
  path: string;
  /** The checkpoint's state, when it could be read. */
  state?: CheckpointState;
  /** Set when latest.json or a state.json was damaged or missing: what was used instead. */
  note?: string;
}

/** The checkpoint folders of `dir` that hold a model.json, newest first, the one latest.json names leading. */
function modelFolders(dir: string): string[] {
  const named = (() => {
    try {
      return readPointerIfAny(dir)?.checkpoint;
    } catch {
      return undefined;
    }
  })();
  const all = fs.readdirSync(dir).filter((n) => CHECKPOINT_FOLDER.test(n) && fs.existsSync(path.join(dir, n, MODEL_FILE)))
    .sort((a, b) => position(b) - position(a));
  return named !== undefined && all.includes(named) ? [named, ...all.filter((n) => n !== named)] : all;
}

/**
 * Loads a saved model for evaluation from `dir`: either a folder holding model.json (+ its
 * weights), or a checkpoint directory (the checkpoint latest.json names, else the newest
 * folder with a model). A damaged state.json or latest.json does not stop an intact model
 * from loading; `note` says what was missing. Reads only; removes nothing.
 */
export async function loadModelFromDir(dir: string): Promise<LoadedModel> {
  const what = 'pass a checkpoint directory of `nin train --checkpoint-dir` or a folder with model.json and weights.bin';
  const stat = statOrUndefined(dir, 'model directory');
  if (!stat) throw new ConfigError(`model directory ${dir} does not exist; ${what}`);
  if (!stat.isDirectory()) throw new ConfigError(`model directory ${dir} is not a directory; ${what}`);
  if (fs.existsSync(path.join(dir, MODEL_FILE))) {
    return { model: await loadLayersModelFromFolder(dir, what), path: dir };
  }
  const [newest] = modelFolders(dir);
  if (newest === undefined) {
    throw new ConfigError(`${dir} holds neither ${MODEL_FILE} nor a checkpoint (${LATEST_FILE}); ${what}`);
  }
  const folder = path.join(dir, newest);
  const model = await loadLayersModelFromFolder(folder, `the checkpoint is damaged; ${what}`);
  let pointerNote: string | undefined;
  try {
    if (readPointerIfAny(dir)?.checkpoint !== newest) pointerNote = `${LATEST_FILE} does not name ${newest}; used it as the newest`;
  } catch (err) {
    pointerNote = `${(err as Error).message.split(';')[0]}; used ${newest}, the newest checkpoint folder`;
  }
  const beside = stateBeside(folder);
  return { model, path: folder, state: beside.state, note: [pointerNote, beside.note].filter(Boolean).join('; ') || undefined };
}

/** The state.json beside a model, when there is a readable one. */
function stateBeside(folder: string): { state?: CheckpointState; note?: string } {
  const file = path.join(folder, STATE_FILE);
  if (!fs.existsSync(file)) return {};
  try {
    return { state: readState(file, 'ignored') };
  } catch (err) {
    return { note: `${(err as Error).message.split(';')[0]}; evaluated the model without it` };
  }
}
