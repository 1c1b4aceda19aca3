/**
 * Checkpoints: a model in TensorFlow.js layers format plus the state a run needs to continue.
 *
 * A checkpoint directory looks like
 *
 *   DIR/latest.json            {"checkpoint": "epoch-0002", ...}: the last complete checkpoint
 *   DIR/epoch-0002/model.json  layers-model topology + weightsManifest (tf.loadLayersModel reads it)
 *   DIR/epoch-0002/weights.bin the weights, float32, in manifest order
 *   DIR/epoch-0002/state.json  epochs done, history, configs, seed, optimizer, the others' SHA-256
 *   DIR/epoch-0002/state.sha256  state.json's SHA-256
 *   DIR/epoch-0002/optimizer.bin  the optimizer's per-weight state (momentum's velocity, Adam's
 *                              two moving averages), float32, in the order state.json lists
 *                              it; absent for plain SGD
 *
 * A run stopped mid-epoch (Ctrl-C) saves `epoch-0002-step-000013`: epoch 2 complete and 13
 * steps of epoch 3. Writing is atomic: files go into `NAME.tmp-PID/`, are fsynced, and the
 * folder is renamed into place; then `latest.json` is replaced the same way (written aside,
 * renamed). A process killed at any moment leaves `latest.json` naming a complete checkpoint.
 *
 * Integrity. Every file of a checkpoint has its SHA-256 recorded: state.json's `checksums`
 * holds those of model.json, weights.bin and optimizer.bin, and state.json's own, which it
 * cannot hold, is in `epoch-0002/state.sha256`, one line in sha256sum's format
 * (`HEX  state.json`, so `sha256sum -c state.sha256` checks it by hand). The hash of
 * state.json sits in that small manifest in the folder rather than in latest.json so that
 * every checkpoint folder verifies on its own: the one a damaged pointer falls back to, and
 * one handed to {@link loadModelFromDir} directly, not only the one latest.json names. Every
 * reader verifies: {@link latestCheckpoint} (and so a resume) uses a checkpoint only if all
 * its files match, falling back to the newest one that does and saying so (`recovered`);
 * {@link loadCheckpoint} and {@link loadModelFromDir} check the very bytes they load, and a
 * mismatch is one line naming the file. Checkpoints written before checksums (no `checksums`,
 * no state.sha256) still load, with a note that their files were not verified.
 *
 * Every file read must be a regular file: a FIFO, a socket or a device in a checkpoint is
 * refused in one line, never read (a read could block forever). latest.json is ours: one that
 * is damaged (not JSON, not this format, naming anything but a plain checkpoint folder name
 * such as `epoch-0002`), a symbolic link (never followed) or a FIFO counts as missing, and the
 * next save replaces it (the rename replaces the entry itself, a link and not its target).
 *
 * Only what a run wrote is ever removed: folders named like a checkpoint that hold this
 * format's state.json, and the leftovers of its own killed writes (`epoch-….tmp-PID`,
 * `latest.json.tmp-PID`). Anything else in the folder is left alone. When `latest.json` is
 * missing, damaged or names a missing or damaged folder, the newest complete checkpoint
 * folder whose files verify is used.
 *
 * The folder a run saves into is never a checkpoint folder itself ({@link checkRunFolder}).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { numBatches } from '../core/fashionMnist';
import {
  Checksums, FileError, Fix, fixError, fsReason, isObject, notRegularFile, parseJson, readJson, readRegularFile, replaceFile, sha256,
  statOrUndefined, syncDir, userFsCode, writeSynced,
} from './files';
import { DivergedError, nonFiniteWeights } from '../core/health';
import { Expected, loadLayersModelFromFolder, MODEL_FILE, saveLayersModel, WEIGHTS_FILE } from './layersFolder';
import { nin, NinConfig, resolveNinConfig } from '../core/model';
import { learningRateAt, NinOptimizer, optimizerKind, hasOptimizerState } from '../core/optimizers';
import { OPTIMIZER_FILE, OptimizerState, optimizerSlots, restoreOptimizer } from './optimizerState';
import type { EpochResult, PartialEpoch } from '../core/history';
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
/** state.json's SHA-256, in sha256sum's format: `HEX  state.json`. */
export const STATE_SUM_FILE = 'state.sha256';

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
  /**
   * SHA-256 (hex) of the checkpoint's other files by name: model.json, weights.bin and, when
   * there are slots, optimizer.bin. Absent in checkpoints written before checksums.
   */
  checksums?: Checksums;
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

/**
 * A checkpoint found by {@link latestCheckpoint}, its state read and its files verified;
 * {@link loadCheckpoint} takes it so as not to read latest.json and state.json again.
 */
export type FoundCheckpoint = CheckpointLocation & {
  state: CheckpointState;
  /** Why this checkpoint and not the one latest.json names, or that its files could not be verified (written before checksums). */
  recovered?: string;
};


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
 * points latest.json at it; see the module comment for the layout, the checksums, and why a
 * kill cannot corrupt it. Saving the position latest.json already names is a no-op when that
 * checkpoint verifies. A damaged latest.json (or a symbolic link, a FIFO) is replaced.
 * Refuses weights or optimizer state that are NaN or infinite (a DivergedError). A write that
 * fails (a full disk, a permission) leaves nothing half-written and throws a FileError saying
 * how much room a save needs. The optimizer may be left out for plain SGD (it has no state to
 * save), not with momentum or Adam. Then this format's older checkpoints are removed
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
  const unsummed = checkpointState(contents, slots.slots, slots.betaPowers);
  const name = checkpointName(unsummed.epochsCompleted, unsummed.steps);
  const target = path.join(dir, name);
  if (intactPointer(dir)?.checkpoint === name) {
    const same = verifiedOrUndefined(dir, name);
    if (same) return { dir, name, path: target, state: same, bytes: 0, warnings: [] };
  }
  const tmp = `${target}.tmp-${process.pid}`;
  let bytes = slots.bytes.byteLength;
  let state = unsummed;
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.rmSync(tmp, { recursive: true, force: true });
    const written = await saveLayersModel(model, tmp);
    bytes += written.bytes;
    const checksums: Checksums = { ...written.sha256 };
    if (slots.slots.length > 0) {
      writeSynced(path.join(tmp, OPTIMIZER_FILE), slots.bytes);
      checksums[OPTIMIZER_FILE] = sha256(slots.bytes);
    }
    state = { ...unsummed, checksums };
    const stateJson = `${JSON.stringify(state, null, 2)}\n`;
    writeSynced(path.join(tmp, STATE_FILE), stateJson);
    writeSynced(path.join(tmp, STATE_SUM_FILE), `${sha256(stateJson)}  ${STATE_FILE}\n`);
    bytes += Buffer.byteLength(stateJson);
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

/**
 * Whether `dir/name` is a checkpoint folder this format wrote (its state.json says so), named
 * like one (unless `anyName`).
 */
function isOurCheckpoint(dir: string, name: string, anyName = false): boolean {
  if (!anyName && !CHECKPOINT_FOLDER.test(name)) return false;
  try {
    const state = readJson(path.join(dir, name, STATE_FILE), '');
    return isObject(state) && state.format === CHECKPOINT_FORMAT;
  } catch {
    return false; // missing, unreadable, not a regular file (never read), not ours
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
 * only while holding the folder (see lib/storage/folderLock.ts): another run's write in progress
 * would look like a leftover.
 */
function cleanCheckpointDir(dir: string, keep: string): string[] {
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
/** What to do about a checkpoint file whose checksum does not match (the message already says it is damaged). */
const replaceOrRestart = (dir: string) => `delete ${dir} to start afresh, or resume from another checkpoint directory`;

/** What is at `file`, not following a symbolic link; undefined when nothing is. */
function lstatOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new FileError(`${file} cannot be looked at ${fsReason(err)}`, userFsCode(err));
  }
}

/**
 * latest.json of `dir`, or undefined when there is none (a missing dir counts as none). A
 * pointer that is a symbolic link (never followed), not a regular file (never read: a FIFO
 * would block), not JSON, not this format, or naming anything but a plain checkpoint folder
 * name (`../..`, an absolute path) is a one-line ConfigError.
 */
function readPointerIfAny(dir: string): CheckpointPointer | undefined {
  const file = path.join(dir, LATEST_FILE);
  const fix = 'it should name the last complete checkpoint folder';
  const stat = lstatOrUndefined(file);
  if (stat === undefined) return undefined;
  if (stat.isSymbolicLink()) {
    throw new ConfigError(`${file} is a symbolic link, not the pointer a run writes (it is never followed); ${fix}`);
  }
  if (!stat.isFile()) throw notRegularFile(file, stat, fix);
  const value = readJson(file, fix);
  if (!isObject(value) || value.format !== CHECKPOINT_FORMAT || typeof value.checkpoint !== 'string') {
    throw new ConfigError(`${file} is not a ${CHECKPOINT_FORMAT} pointer (no "checkpoint": "epoch-NNNN"); ${fix}`);
  }
  if (!isCheckpointName(value.checkpoint)) {
    throw new ConfigError(`${file} names ${JSON.stringify(value.checkpoint)}, which is not a checkpoint folder name ` +
      `(epoch-NNNN or epoch-NNNN-step-NNNNNN, in ${dir}); ${fix}`);
  }
  return value as unknown as CheckpointPointer;
}

/** A plain checkpoint folder name: `epoch-0002` or `epoch-0002-step-000013`, no path. */
function isCheckpointName(name: string): boolean {
  return CHECKPOINT_FOLDER.test(name) && path.basename(name) === name;
}

/** latest.json of `dir` when it is whole; undefined when it is missing or damaged in any way (a save then replaces it). */
function intactPointer(dir: string): CheckpointPointer | undefined {
  try {
    return readPointerIfAny(dir);
  } catch (err) {
    if (err instanceof ConfigError) return undefined;
    throw err;
  }
}

/**
 * The state of checkpoint `dir/name`, every file verified: state.json against state.sha256,
 * model.json, weights.bin and optimizer.bin against state.json's checksums. Every file must
 * be a regular one. A checkpoint written before checksums has its state checked as ever and
 * `note` says its files were not verified. Any problem is a one-line ConfigError naming the
 * file; `fix` says what to do, `sumFix` what to do about a checksum that does not match.
 */
function openCheckpoint(dir: string, name: string, fix: Fix, sumFix: Fix = fix): { state: CheckpointState; note?: string } {
  const folder = path.join(dir, name);
  const stateFile = path.join(folder, STATE_FILE);
  const text = readRegularFile(stateFile, fix);
  const sumFile = path.join(folder, STATE_SUM_FILE);
  const hasSum = lstatOrUndefined(sumFile) !== undefined;
  if (hasSum) {
    const recorded = /^([0-9a-f]{64})\b/i.exec(readRegularFile(sumFile, fix).toString('utf8'));
    if (recorded === null) throw fixError(`${sumFile} holds no SHA-256 of ${STATE_FILE} (HEX  ${STATE_FILE}): the file is damaged`, sumFix);
    if (sha256(text) !== recorded[1].toLowerCase()) {
      throw fixError(`${stateFile} does not match its checksum in ${STATE_SUM_FILE}: the file is damaged`, sumFix);
    }
  }
  const state = checkState(parseJson(text.toString('utf8'), stateFile, fix), stateFile, fix);
  const files = [MODEL_FILE, WEIGHTS_FILE, ...(state.optimizer.slots.length > 0 ? [OPTIMIZER_FILE] : [])];
  if (state.checksums === undefined) {
    if (hasSum) throw fixError(`${stateFile} records no checksums though ${STATE_SUM_FILE} is beside it: the file is damaged`, sumFix);
    for (const f of files) readableRegularFile(path.join(folder, f), fix);
    return { state, note: `${stateFile} records no checksums (a checkpoint of an older version): its files were not verified` };
  }
  if (!hasSum) {
    throw fixError(`${sumFile} is missing, so ${stateFile} cannot be verified: the checkpoint is incomplete`, sumFix);
  }
  for (const f of files) {
    const file = path.join(folder, f);
    const expected = state.checksums[f];
    if (expected === undefined) throw fixError(`${file} has no checksum in ${stateFile}: the file is damaged`, sumFix);
    const bytes = readRegularFile(file, fix);
    if (sha256(bytes) === expected) continue;
    const described = f === OPTIMIZER_FILE ? 4 * state.optimizer.slots.reduce((n, slot) => n + slot.shape.reduce((a, b) => a * b, 1), 0) : undefined;
    if (described !== undefined && bytes.byteLength !== described) { // the more telling message
      throw fixError(`${file} holds ${bytes.byteLength} bytes but ${STATE_FILE} describes ${described}: truncated`, fix);
    }
    throw fixError(`${file} does not match its checksum in ${stateFile}: the file is damaged`, sumFix);
  }
  return { state };
}

/** Throws unless `file` is a regular file (without reading it). */
function readableRegularFile(file: string, fix: Fix): void {
  const stat = statOrUndefined(file, 'checkpoint file');
  if (!stat) throw fixError(`${file} is missing`, fix);
  if (!stat.isFile()) throw notRegularFile(file, stat, fix);
}

/** The verified state of `dir/name`, or undefined when it is missing or does not verify. */
function verifiedOrUndefined(dir: string, name: string): CheckpointState | undefined {
  try {
    return openCheckpoint(dir, name, '').state;
  } catch (err) {
    if (err instanceof ConfigError) return undefined;
    throw err;
  }
}

/** This format's checkpoint folders in `dir` that hold a state.json of ours, a model and weights, newest first. */
function checkpointFolders(dir: string): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((name) => isOurCheckpoint(dir, name) && [MODEL_FILE, WEIGHTS_FILE].every((f) => fs.existsSync(path.join(dir, name, f))))
    .sort((a, b) => position(b) - position(a));
}

/** Whether `dir` holds a checkpoint: a pointer (latest.json, whatever it is), or a checkpoint folder of ours with model and weights. */
export function hasCheckpoint(dir: string): boolean {
  return lstatOrUndefined(path.join(dir, LATEST_FILE)) !== undefined || checkpointFolders(dir).length > 0;
}

/**
 * The last complete checkpoint of `dir`, its files verified (see the module comment): the
 * folder latest.json names; when the pointer is missing or damaged, or names a folder that is
 * missing or does not verify, the newest checkpoint folder that verifies, with `recovered`
 * saying why. `recovered` also says when the checkpoint's files could not be verified (one
 * written before checksums).
 */
export function latestCheckpoint(dir: string): FoundCheckpoint {
  const stat = statOrUndefined(dir, 'checkpoint directory');
  if (!stat) {
    throw new ConfigError((n) => `checkpoint directory ${dir} does not exist; train without ${n} to create it ` +
      '(a run saves its first checkpoint at the end of epoch 1)', 'resume');
  }
  if (!stat.isDirectory()) throw new ConfigError(`checkpoint directory ${dir} is not a directory; name the folder a run saved into`);
  const latest = path.join(dir, LATEST_FILE);
  if (lstatOrUndefined(latest)?.isDirectory()) {
    throw new ConfigError(`${latest} is a directory, where a run keeps the pointer to its last checkpoint (a file); ` +
      `move it out of ${dir}`);
  }
  const found = (name: string, recovered?: string): FoundCheckpoint => {
    const { state, note } = openCheckpoint(dir, name, damaged(dir), replaceOrRestart(dir));
    return { dir, name, path: path.join(dir, name), state, recovered: [recovered, note].filter(Boolean).join('; ') || undefined };
  };
  let problem: ConfigError;
  let named: string | undefined;
  try {
    const pointer = readPointerIfAny(dir);
    named = pointer?.checkpoint;
    if (pointer === undefined) {
      problem = new ConfigError((n) => `${dir} holds no complete checkpoint yet (no ${LATEST_FILE}, and no complete ` +
        `epoch-NNNN folder; a run writes its first at the end of epoch 1); train without ${n} to start afresh`, 'resume');
    } else if (!fs.statSync(path.join(dir, pointer.checkpoint), { throwIfNoEntry: false })?.isDirectory()) {
      problem = new ConfigError(`${latest} names ${pointer.checkpoint}, which is missing from ${dir}, ` +
        'and no other complete checkpoint is there; start afresh in a new checkpoint directory');
    } else {
      return found(pointer.checkpoint);
    }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problem = err;
  }
  for (const name of checkpointFolders(dir)) {
    if (name === named) continue; // it was tried
    try {
      return found(name, `${problem.message.split(';')[0]}; using ${name}, the newest complete checkpoint there`);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err; // damaged too: try an older one
    }
  }
  throw problem;
}

/** Checks a parsed state.json; every problem is a one-line ConfigError naming the file. */
function checkState(value: unknown, file: string, fix: Fix): CheckpointState {
  if (!isObject(value) || value.format !== CHECKPOINT_FORMAT) {
    throw fixError(`${file} is not a ${CHECKPOINT_FORMAT} state file`, fix);
  }
  if (value.version !== CHECKPOINT_VERSION) {
    throw new ConfigError(`${file} has checkpoint version ${String(value.version)}; this version reads checkpoint version ` +
      `${CHECKPOINT_VERSION}: use the version that wrote it, or start afresh`);
  }
  let train: TrainConfig;
  try {
    train = resolveTrainConfig(value.train as Partial<TrainConfig>);
    resolveNinConfig(value.model as Partial<NinConfig>);
  } catch (err) {
    throw fixError(`${file}: ${(err as Error).message}`, fix);
  }
  const data = value.data as { trainCount?: unknown; testCount?: unknown } | undefined;
  const history = value.history;
  const steps = value.steps;
  if (!Array.isArray(history) || !history.every((e, i) => isObject(e) && e.epoch === i + 1) ||
      value.epochsCompleted !== history.length || typeof steps !== 'number' || !Number.isInteger(steps) || steps < 0 ||
      !isObject(data) || !Number.isInteger(data.trainCount) || !Number.isInteger(data.testCount) ||
      (steps > 0 && !(isObject(value.partial) && value.partial.steps === steps && value.partial.epoch === history.length + 1))) {
    throw fixError(`${file} has an inconsistent history, position or data sizes`, fix);
  }
  const opt = value.optimizer;
  const kind = optimizerKind(train);
  const betas = isObject(opt) ? opt.betaPowers : undefined;
  if (!isObject(opt) || opt.name !== kind || !Array.isArray(opt.slots) ||
      !opt.slots.every((s) => isObject(s) && typeof s.name === 'string' && Array.isArray(s.shape) &&
        s.shape.every((d) => Number.isInteger(d) && d >= 0)) ||
      (kind === 'adam' && !(Array.isArray(betas) && betas.length === 2 && betas.every((b) => typeof b === 'number' && b > 0 && b < 1)))) {
    throw fixError(`${file} has no valid optimizer record (its name must match the training config's optimizer ` +
      `and momentum${kind === 'adam' ? ', and Adam needs its betaPowers' : ''})`, fix);
  }
  const sums = value.checksums;
  if (sums !== undefined && !(isObject(sums) && Object.values(sums).every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h)))) {
    throw fixError(`${file} has a malformed "checksums" record (file name to SHA-256 in hex)`, fix);
  }
  return value as unknown as CheckpointState;
}

/**
 * What `dir` is, for a run about to save into it: `checkpoint` when it is a checkpoint folder
 * itself (it holds a state.json of this format; or it holds model.json, or is named like a
 * checkpoint, and its parent holds latest.json), `run` when it is a folder runs save into (it
 * holds a checkpoint), `missing` when there is nothing there yet, and `other` otherwise.
 */
export function checkpointFolderKind(dir: string): 'checkpoint' | 'run' | 'missing' | 'other' {
  return isCheckpointFolder(dir) ? 'checkpoint' : !statOrUndefined(dir, 'checkpoint directory') ? 'missing'
    : hasCheckpoint(dir) ? 'run' : 'other';
}

/** The cheap half of {@link checkpointFolderKind}: whether `dir` is a checkpoint folder itself. */
function isCheckpointFolder(dir: string): boolean {
  const stat = statOrUndefined(dir, 'checkpoint directory');
  if (stat && !stat.isDirectory()) return false;
  if (stat && isOurCheckpoint(path.dirname(dir), path.basename(dir), true)) return true;
  const parentPoints = lstatOrUndefined(path.join(path.dirname(dir), LATEST_FILE)) !== undefined;
  return parentPoints && (CHECKPOINT_FOLDER.test(path.basename(dir)) || (stat !== undefined && fs.existsSync(path.join(dir, MODEL_FILE))));
}

/**
 * The folder a run is to save its checkpoints in (the option as given), resolved; refused in
 * one line when it is empty, or when it is a checkpoint folder itself
 * ({@link checkpointFolderKind}) such as `DIR/epoch-0001`: resuming from it would treat it as
 * the run's folder, and a fresh run inside it would nest checkpoints within a checkpoint that
 * the run of DIR removes with its next save.
 */
export function checkRunFolder(option: string): string {
  if (typeof option !== 'string' || option === '') {
    throw new ConfigError((n) => `${n} must be a directory path, got ${JSON.stringify(option)}`, 'checkpointDir');
  }
  const dir = path.resolve(option);
  if (isCheckpointFolder(dir)) {
    throw new ConfigError((n) => `${dir} is a checkpoint folder itself, not the folder a run saves its checkpoints in; ` +
      `to resume from it, pass its parent ${path.dirname(dir)} as ${n}; to start afresh, choose a folder outside it`, 'checkpointDir');
  }
  return dir;
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
      'weight shapes); resume only from checkpoints a NiN training run saved');
  }
}

/** The SHA-256 a checkpoint's state records, as the model and optimizer loaders check them. */
function expectedOf(state: CheckpointState, folder: string, fix: Fix): Expected | undefined {
  return state.checksums && { sums: state.checksums, recordedIn: path.join(folder, STATE_FILE), fix };
}

/**
 * Loads a checkpoint for resuming: its model (weights as saved, checked against their
 * checksums and to be the NiN its state describes), state, and optimizer (built for `train`,
 * by default the checkpoint's own training config, with the saved step counter and slots).
 * `from` is the checkpoint directory (its last complete checkpoint is found with
 * {@link latestCheckpoint}) or what `latestCheckpoint` found already, whose latest.json and
 * state.json are then not read again. The caller disposes the model and the optimizer
 * ({@link disposeOptimizer}). Leftovers of killed writes and this format's older checkpoints
 * are removed.
 */
export async function loadCheckpoint(from: string | FoundCheckpoint, train?: TrainConfig): Promise<FoundCheckpoint & {
  model: tfl.LayersModel; optimizer: NinOptimizer; warnings: string[];
}> {
  const found = typeof from === 'string' ? latestCheckpoint(from) : from;
  const { state, dir } = found;
  const expected = expectedOf(state, found.path, replaceOrRestart(dir));
  const model = await loadLayersModelFromFolder(found.path, damaged(dir), expected);
  let optimizer: NinOptimizer;
  try {
    checkIsNin(model, resolveNinConfig(state.model), found.path);
    optimizer = await restoreOptimizer(found.path, state.optimizer, train ?? resolveTrainConfig(state.train), model, damaged(dir), expected);
  } catch (err) {
    model.dispose();
    throw err;
  }
  const warnings = cleanCheckpointDir(dir, found.name);
  return { ...found, model, optimizer, warnings };
}

/** What {@link loadModelFromDir} found. */
export interface LoadedModel {
  model: tfl.LayersModel;
  /** The folder model.json was read from. */
  path: string;
  /** The checkpoint's state, when it could be read. */
  state?: CheckpointState;
  /** Set when latest.json or a state.json was damaged or missing, or the files could not be verified: what was done instead. */
  note?: string;
}

/** The checkpoint folders of `dir` that hold a model.json, newest first, the one latest.json names leading. */
function modelFolders(dir: string): string[] {
  const named = intactPointer(dir)?.checkpoint;
  const all = fs.readdirSync(dir).filter((n) => CHECKPOINT_FOLDER.test(n) && fs.existsSync(path.join(dir, n, MODEL_FILE)))
    .sort((a, b) => position(b) - position(a));
  return named !== undefined && all.includes(named) ? [named, ...all.filter((n) => n !== named)] : all;
}

/** What to pass instead, said to whom gave a model directory. */
const MODEL_DIR_FIX = {
  field: 'checkpointDir',
  say: (_: string, nameOf: (field: string) => string) => `pass a checkpoint directory (the ${nameOf('checkpointDir')} of ` +
    'a training run) or a folder with model.json and weights.bin',
};

/**
 * Loads a saved model for evaluation from `dir`: either a folder holding model.json (+ its
 * weights), or a checkpoint directory (the checkpoint latest.json names, else the newest
 * folder with a model). Beside a state.json with checksums, model.json and the weights must
 * match them: a damaged file is refused in one line naming it. A damaged state.json or
 * latest.json does not stop an intact model from loading; `note` says what was missing, and
 * that the files were not verified. Reads only; removes nothing.
 */
export async function loadModelFromDir(given: string): Promise<LoadedModel> {
  if (typeof given !== 'string' || given.trim() === '') {
    throw new ConfigError((n) => `${n} must be a directory path, got ${JSON.stringify(given)}`, 'modelDir');
  }
  const dir = path.resolve(given);
  const stat = statOrUndefined(dir, 'model directory');
  if (!stat) throw fixError(`model directory ${dir} does not exist`, MODEL_DIR_FIX);
  if (!stat.isDirectory()) throw fixError(`model directory ${dir} is not a directory`, MODEL_DIR_FIX);
  const sumFix = 'evaluate another checkpoint, or a good copy of this one';
  if (fs.existsSync(path.join(dir, MODEL_FILE))) {
    const beside = stateBeside(dir, sumFix);
    return { model: await loadLayersModelFromFolder(dir, MODEL_DIR_FIX, beside.expected), path: dir, note: beside.note };
  }
  const [newest] = modelFolders(dir);
  if (newest === undefined) throw fixError(`${dir} holds neither ${MODEL_FILE} nor a checkpoint (${LATEST_FILE})`, MODEL_DIR_FIX);
  const folder = path.join(dir, newest);
  const beside = stateBeside(folder, sumFix);
  const damagedFix: Fix = { field: MODEL_DIR_FIX.field, say: (n, nameOf) => `the checkpoint is damaged; ${MODEL_DIR_FIX.say(n, nameOf)}` };
  const model = await loadLayersModelFromFolder(folder, damagedFix, beside.expected);
  let pointerNote: string | undefined;
  try {
    if (readPointerIfAny(dir)?.checkpoint !== newest) pointerNote = `${LATEST_FILE} does not name ${newest}; used it as the newest`;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    pointerNote = `${err.message.split(';')[0]}; used ${newest}, the newest checkpoint folder`;
  }
  return { model, path: folder, state: beside.state, note: [pointerNote, beside.note].filter(Boolean).join('; ') || undefined };
}

/**
 * The state.json beside a model, when there is a readable one, checked against state.sha256,
 * and the checksums the model must match. A folder without state.json is a plain model: no
 * note. A damaged state.json, or one written before checksums, gives a note instead: the
 * model is evaluated unverified.
 */
function stateBeside(folder: string, sumFix: Fix): { state?: CheckpointState; note?: string; expected?: Expected } {
  const file = path.join(folder, STATE_FILE);
  if (lstatOrUndefined(file) === undefined) return {};
  try {
    const text = readRegularFile(file, 'ignored');
    const sumFile = path.join(folder, STATE_SUM_FILE);
    if (lstatOrUndefined(sumFile) !== undefined) {
      const recorded = /^([0-9a-f]{64})\b/i.exec(readRegularFile(sumFile, 'ignored').toString('utf8'));
      if (recorded === null || sha256(text) !== recorded[1].toLowerCase()) {
        throw new ConfigError(`${file} does not match its checksum in ${STATE_SUM_FILE}: the file is damaged`);
      }
    }
    const state = checkState(parseJson(text.toString('utf8'), file, 'ignored'), file, 'ignored');
    if (state.checksums === undefined) {
      return { state, note: `${file} records no checksums (a checkpoint of an older version): evaluated the model unverified` };
    }
    return { state, expected: expectedOf(state, folder, sumFix) };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { note: `${err.message.split(';')[0]}; evaluated the model without it, unverified` };
  }
}
