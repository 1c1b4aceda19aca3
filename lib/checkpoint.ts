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
 * Older checkpoints and leftovers of killed writes are removed after each save and on load.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { numBatches } from './data/fashionMnist';
import { KernelInit, NinConfig, resolveNinConfig } from './model';
import { disposeOptimizer, hasOptimizerState, learningRateAt, makeOptimizer, optimizerKind } from './optimizers';
import { EpochResult, PartialEpoch } from './train';
import { LrSchedule, OptimizerName, resolveTrainConfig, TrainConfig } from './trainConfig';
import { ConfigError } from './validate';
import { DivergedError, nonFiniteWeights } from './health';

/** `format` of state.json and latest.json. */
export const CHECKPOINT_FORMAT = 'nin-tfjs-checkpoint';
/** Bumped when state.json changes incompatibly (2: the optimizer's state is saved). */
export const CHECKPOINT_VERSION = 2;
/** The pointer to the last complete checkpoint. */
export const LATEST_FILE = 'latest.json';
/** A checkpoint's (or any saved model's) topology and weights manifest. */
export const MODEL_FILE = 'model.json';
/** The weights, as model.json's manifest describes them. */
export const WEIGHTS_FILE = 'weights.bin';
/** A checkpoint's {@link CheckpointState}. */
export const STATE_FILE = 'state.json';
/** The optimizer's slot variables (see {@link OptimizerState}). */
export const OPTIMIZER_FILE = 'optimizer.bin';

/**
 * The optimizer as state.json records it. Plain SGD has no per-weight (slot) variables: its
 * update depends only on the learning rate. Momentum keeps one velocity tensor per trainable
 * weight, in the model's `trainableWeights` order; Adam keeps two (first the averages of the
 * gradients for every weight, then those of their squares). Their values are in optimizer.bin.
 * `iterations` is the optimizer's step counter; `lr` is the rate the next step will use.
 */
export interface OptimizerState {
  name: 'sgd' | 'momentum' | 'adam';
  lr: number;
  momentum: number;
  iterations: number;
  slots: { name: string; shape: number[] }[];
  /**
   * Adam only: β1^(t+1) and β2^(t+1) exactly as the optimizer held them (products of float32
   * multiplications; recomputing them with `pow`, as tfjs's `setWeights` does, rounds
   * differently and a resumed run would drift from the uninterrupted one in the last bits).
   */
  betaPowers?: [number, number];
}

/** Adam's running powers of β1 and β2 (tfjs keeps them as scalar variables). */
interface AdamInternals { accBeta1: tf.Variable; accBeta2: tf.Variable }

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

/** Folder name for a position: `epoch-0002` (2 epochs done), `epoch-0002-step-000013` (+13 steps). */
export function checkpointName(epochsCompleted: number, steps = 0): string {
  const e = `epoch-${String(epochsCompleted).padStart(4, '0')}`;
  return steps > 0 ? `${e}-step-${String(steps).padStart(6, '0')}` : e;
}

const CHECKPOINT_FOLDER = /^epoch-\d{4,}(-step-\d{6,})?$/;
const LEFTOVER = /\.tmp-\d+$/;

// ---------------------------------------------------------------------------------------------
// Writing

/** Writes `data` to `file` and flushes it to disk before returning. */
function writeSynced(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Flushes a directory's entries (a rename) to disk; a filesystem that refuses is left be. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems cannot fsync a directory; the rename is atomic all the same.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The standard model.json of a layers model (what tfjs's own file and HTTP handlers write). */
function modelJson(artifacts: tf.io.ModelArtifacts): tf.io.ModelJSON {
  const json: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as object,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
  };
  if (artifacts.trainingConfig != null) json.trainingConfig = artifacts.trainingConfig;
  if (artifacts.userDefinedMetadata != null) json.userDefinedMetadata = artifacts.userDefinedMetadata;
  return json;
}

/**
 * Writes `model` as `folder/model.json` + `folder/weights.bin` (TensorFlow.js layers format,
 * loadable by `tf.loadLayersModel` from files, HTTP or memory), fsyncing both.
 */
export async function saveLayersModel(model: tfl.LayersModel, folder: string): Promise<void> {
  fs.mkdirSync(folder, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weights = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
    writeSynced(path.join(folder, WEIGHTS_FILE), new Uint8Array(weights));
    writeSynced(path.join(folder, MODEL_FILE), `${JSON.stringify(modelJson(artifacts))}\n`);
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  }));
}

/**
 * The slot variables of `optimizer` (momentum's velocity, Adam's averages; none for plain SGD)
 * as names, shapes and one float32 buffer in order, and Adam's powers of β.
 */
async function optimizerSlots(optimizer: tf.Optimizer): Promise<{
  slots: OptimizerState['slots']; bytes: Uint8Array; betaPowers?: [number, number];
}> {
  const [iter, ...slots] = await optimizer.getWeights();
  iter.tensor.dispose(); // a fresh scalar; the slots are the optimizer's own variables
  const values = await Promise.all(slots.map((s) => s.tensor.data<'float32'>()));
  const all = new Float32Array(values.reduce((n, v) => n + v.length, 0));
  let at = 0;
  for (const v of values) {
    all.set(v, at);
    at += v.length;
  }
  const adam = optimizer.getClassName() === 'Adam' ? optimizer as unknown as AdamInternals : undefined;
  return {
    slots: slots.map((s) => ({ name: s.name, shape: [...s.tensor.shape] })),
    bytes: new Uint8Array(all.buffer),
    betaPowers: adam && [(await adam.accBeta1.data())[0], (await adam.accBeta2.data())[0]],
  };
}

/**
 * Saves a checkpoint of `model`, `optimizer` and `contents` in `dir` (created if needed) and
 * points latest.json at it; see the module comment for the layout and why a kill cannot
 * corrupt it. Saving the position latest.json already names is a no-op. Older checkpoints
 * are removed. The optimizer may be left out for plain SGD (it has no state to save), not
 * with momentum or Adam: a run resumed without their state would not be the same run.
 */
export async function saveCheckpoint(
  dir: string, model: tfl.LayersModel, contents: CheckpointContents, optimizer?: tf.Optimizer,
): Promise<CheckpointLocation & { state: CheckpointState }> {
  if (optimizer === undefined && hasOptimizerState(contents.train)) {
    throw new Error(`saveCheckpoint: a run with ${optimizerKind(contents.train)} must pass its optimizer, whose state ` +
      'the checkpoint keeps');
  }
  const slots = optimizer === undefined ? { slots: [], bytes: new Uint8Array(0) } : await optimizerSlots(optimizer);
  refuseNonFinite(dir, model, slots.bytes);
  const state = checkpointState(contents, slots.slots, slots.betaPowers);
  const name = checkpointName(state.epochsCompleted, state.steps);
  const target = path.join(dir, name);
  fs.mkdirSync(dir, { recursive: true });
  if (readPointerIfAny(dir)?.checkpoint === name && fs.existsSync(target)) {
    return { dir, name, path: target, state: readState(path.join(target, STATE_FILE), dir) };
  }
  const tmp = `${target}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  await saveLayersModel(model, tmp);
  if (slots.slots.length > 0) writeSynced(path.join(tmp, OPTIMIZER_FILE), slots.bytes);
  writeSynced(path.join(tmp, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
  syncDir(tmp);
  fs.rmSync(target, { recursive: true, force: true }); // a stale folder a killed run renamed but never pointed at
  fs.renameSync(tmp, target);
  syncDir(dir);

  const pointer: CheckpointPointer = {
    format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, checkpoint: name,
    epochsCompleted: state.epochsCompleted, steps: state.steps, savedAt: state.savedAt,
  };
  const latest = path.join(dir, LATEST_FILE);
  const latestTmp = `${latest}.tmp-${process.pid}`;
  writeSynced(latestTmp, `${JSON.stringify(pointer, null, 2)}\n`);
  fs.renameSync(latestTmp, latest);
  syncDir(dir);
  cleanCheckpointDir(dir, name);
  return { dir, name, path: target, state };
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
 * Removes every checkpoint folder of `dir` but `keep`, and leftovers (`*.tmp-PID`) of writes
 * that were killed. One run per checkpoint directory: another run's write in progress would
 * be removed too.
 */
export function cleanCheckpointDir(dir: string, keep: string): void {
  for (const entry of fs.readdirSync(dir)) {
    if ((CHECKPOINT_FOLDER.test(entry) && entry !== keep) || LEFTOVER.test(entry)) {
      fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Parses a JSON file, or throws a one-line ConfigError naming it and what to do. */
function readJson(file: string, fix: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); ${fix}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const what = text.trim() === '' ? 'is empty' : `is not valid JSON (${String((err as Error).message).split('\n')[0]})`;
    throw new ConfigError(`${file} ${what}; ${fix}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** latest.json of `dir`, or undefined when there is none (a missing dir counts as none). */
function readPointerIfAny(dir: string): CheckpointPointer | undefined {
  const file = path.join(dir, LATEST_FILE);
  if (!fs.existsSync(file)) return undefined;
  const fix = `it should name the last complete checkpoint folder; delete ${dir} to start afresh, or use another checkpoint directory`;
  const value = readJson(file, fix);
  if (!isObject(value) || value.format !== CHECKPOINT_FORMAT || typeof value.checkpoint !== 'string' ||
      !CHECKPOINT_FOLDER.test(value.checkpoint)) {
    throw new ConfigError(`${file} is not a ${CHECKPOINT_FORMAT} pointer (no "checkpoint": "epoch-NNNN"); ${fix}`);
  }
  return value as unknown as CheckpointPointer;
}

/** Whether `dir` has a checkpoint pointer (latest.json), complete or not. */
export function hasCheckpoint(dir: string): boolean {
  return fs.existsSync(path.join(dir, LATEST_FILE));
}

/** The last complete checkpoint of `dir`: the folder latest.json names, checked to exist. */
export function latestCheckpoint(dir: string): CheckpointLocation {
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat) {
    throw new ConfigError(`checkpoint directory ${dir} does not exist; train without --resume to create it ` +
      '(a run saves its first checkpoint at the end of epoch 1)');
  }
  if (!stat.isDirectory()) throw new ConfigError(`checkpoint directory ${dir} is not a directory; name the folder a run saved into`);
  const pointer = readPointerIfAny(dir);
  if (pointer === undefined) {
    throw new ConfigError(`${dir} holds no complete checkpoint yet (no ${LATEST_FILE}; a run writes it at the end of ` +
      'its first epoch); train without --resume to start afresh');
  }
  const folder = path.join(dir, pointer.checkpoint);
  if (!fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ConfigError(`${path.join(dir, LATEST_FILE)} names ${pointer.checkpoint}, which is missing from ${dir}; ` +
      `delete ${dir} to start afresh`);
  }
  return { dir, name: pointer.checkpoint, path: folder };
}

/** Reads and checks state.json; every problem is a one-line ConfigError naming the file. */
function readState(file: string, dir: string): CheckpointState {
  const fix = `the checkpoint is damaged: delete ${dir} to start afresh`;
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
export function readCheckpointState(dir: string): CheckpointLocation & { state: CheckpointState } {
  const location = latestCheckpoint(dir);
  return { ...location, state: readState(path.join(location.path, STATE_FILE), dir) };
}

/** Bytes a weight takes in weights.bin (quantized weights take their storage type's size). */
function weightBytes(spec: tf.io.WeightsManifestEntry): number {
  const size: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, int16: 2, complex64: 8 };
  const count = spec.shape.reduce((a, b) => a * b, 1);
  return count * (size[spec.quantization?.dtype ?? spec.dtype] ?? 4);
}

/**
 * Loads a layers model from `folder/model.json` and the weight files its manifest names,
 * checking their sizes first. Problems are one-line ConfigErrors naming the file.
 */
export async function loadLayersModelFromFolder(folder: string, fix: string): Promise<tfl.LayersModel> {
  const file = path.join(folder, MODEL_FILE);
  const json = readJson(file, fix);
  if (!isObject(json) || !isObject(json.modelTopology) || !Array.isArray(json.weightsManifest)) {
    throw new ConfigError(`${file} is not a TensorFlow.js layers model (no modelTopology or weightsManifest); ${fix}`);
  }
  const manifest = json.weightsManifest as tf.io.WeightsManifestConfig;
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const group of manifest) {
    for (const p of group.paths) {
      const weightsFile = path.join(folder, p);
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(weightsFile);
      } catch (err) {
        throw new ConfigError(`${weightsFile} (named in ${file}) cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); ${fix}`);
      }
      buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    }
    specs.push(...group.weights);
  }
  const expected = specs.reduce((s, spec) => s + weightBytes(spec), 0);
  const actual = buffers.reduce((s, b) => s + b.byteLength, 0);
  if (expected !== actual) {
    throw new ConfigError(`the weights in ${folder} hold ${actual} bytes but ${file} describes ${expected}: ` +
      `truncated or from another model; ${fix}`);
  }
  const artifacts = tf.io.getModelArtifactsForJSONSync(json as unknown as tf.io.ModelJSON, specs,
    tf.io.CompositeArrayBuffer.join(buffers));
  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel({ load: async () => artifacts });
  } catch (err) {
    throw new ConfigError(`${file} could not be loaded as a TensorFlow.js layers model ` +
      `(${String((err as Error).message ?? err).split('\n')[0]}); ${fix}`);
  }
  const bad = nonFiniteWeights(model);
  if (bad.count > 0) {
    model.dispose();
    throw new ConfigError(`${folder} holds a model with ${bad.count.toLocaleString('en-US')} of ` +
      `${bad.total.toLocaleString('en-US')} weights NaN or infinite (first in ${bad.layers[0]}): its training diverged; ` +
      'use an earlier checkpoint or train again with a smaller learning rate');
  }
  return model;
}

/**
 * The optimizer of `train` (see {@link makeOptimizer}) with the state a checkpoint saved:
 * its step counter and, for momentum and Adam, their slots, checked against `model`'s
 * trainable weights (one slot per weight for momentum, two for Adam; same shapes, same order).
 * (A checkpoint saved before the first step has no slots yet: tfjs creates them then.)
 */
async function restoreOptimizer(
  folder: string, state: CheckpointState, train: TrainConfig, model: tfl.LayersModel, fix: string,
): Promise<tf.Optimizer> {
  const { slots, iterations, betaPowers } = state.optimizer;
  const weights = model.trainableWeights.map((w) => w.shape.join('x'));
  const expected = state.optimizer.name === 'adam' ? [...weights, ...weights] : weights;
  const file = path.join(folder, OPTIMIZER_FILE);
  if (slots.length > 0 && (slots.length !== expected.length || slots.some((s, i) => s.shape.join('x') !== expected[i]))) {
    throw new ConfigError(`${path.join(folder, STATE_FILE)} lists ${slots.length} optimizer slots that do not match the ` +
      `model's ${weights.length} trainable weights; ${fix}`);
  }
  let values = new Float32Array(0);
  if (slots.length > 0) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (err) {
      throw new ConfigError(`${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); ${fix}`);
    }
    const expected = slots.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0) * 4;
    if (bytes.byteLength !== expected) {
      throw new ConfigError(`${file} holds ${bytes.byteLength} bytes but ${STATE_FILE} describes ${expected}: truncated; ${fix}`);
    }
    values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }
  const optimizer = makeOptimizer(train);
  const named: { name: string; tensor: tf.Tensor }[] = [{ name: 'iter', tensor: tf.scalar(iterations, 'int32') }];
  let at = 0;
  for (const s of slots) {
    const size = s.shape.reduce((a, b) => a * b, 1);
    named.push({ name: s.name, tensor: tf.tensor(values.subarray(at, at + size), s.shape, 'float32') });
    at += size;
  }
  try {
    await optimizer.setWeights(named); // the slots become variables sharing these tensors' data
    if (betaPowers !== undefined) {
      const adam = optimizer as unknown as AdamInternals;
      tf.tidy(() => {
        adam.accBeta1.assign(tf.scalar(betaPowers[0]));
        adam.accBeta2.assign(tf.scalar(betaPowers[1]));
      });
    }
  } catch (err) {
    disposeOptimizer(optimizer);
    throw err;
  } finally {
    tf.dispose(named.map((n) => n.tensor));
  }
  return optimizer;
}

/**
 * Loads the last complete checkpoint of `dir` for resuming: its model (weights as saved),
 * state, and optimizer (built for `train`, by default the checkpoint's own training config,
 * with the saved step counter and slots). The caller disposes the model and the optimizer
 * ({@link disposeOptimizer}). Leftovers of killed writes and older checkpoints are removed.
 */
export async function loadCheckpoint(dir: string, train?: TrainConfig): Promise<CheckpointLocation & {
  model: tfl.LayersModel; optimizer: tf.Optimizer; state: CheckpointState;
}> {
  const { state, ...location } = readCheckpointState(dir);
  const fix = `the checkpoint is damaged: delete ${dir} to start afresh`;
  const model = await loadLayersModelFromFolder(location.path, fix);
  let optimizer: tf.Optimizer;
  try {
    optimizer = await restoreOptimizer(location.path, state, train ?? resolveTrainConfig(state.train), model, fix);
  } catch (err) {
    model.dispose();
    throw err;
  }
  cleanCheckpointDir(dir, location.name);
  return { ...location, model, optimizer, state };
}

/** What {@link loadModelFromDir} found. */
export interface LoadedModel {
  model: tfl.LayersModel;
  /** The folder model.json was read from. */
  path: string;
  /** The checkpoint's state, when `dir` was a checkpoint directory. */
  state?: CheckpointState;
}

/**
 * Loads a saved model for evaluation from `dir`: either a folder holding model.json (+ its
 * weights), or a checkpoint directory (its latest checkpoint). Reads only; removes nothing.
 */
export async function loadModelFromDir(dir: string): Promise<LoadedModel> {
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  const what = 'pass a checkpoint directory of `nin train --checkpoint-dir` or a folder with model.json and weights.bin';
  if (!stat) throw new ConfigError(`model directory ${dir} does not exist; ${what}`);
  if (!stat.isDirectory()) throw new ConfigError(`model directory ${dir} is not a directory; ${what}`);
  if (fs.existsSync(path.join(dir, MODEL_FILE))) {
    return { model: await loadLayersModelFromFolder(dir, what), path: dir };
  }
  if (!fs.existsSync(path.join(dir, LATEST_FILE))) {
    throw new ConfigError(`${dir} holds neither ${MODEL_FILE} nor a checkpoint (${LATEST_FILE}); ${what}`);
  }
  const { state, ...location } = readCheckpointState(dir);
  const model = await loadLayersModelFromFolder(location.path, `the checkpoint is damaged; ${what}`);
  return { model, path: location.path, state };
}

// ---------------------------------------------------------------------------------------------
// Resuming

/** Options given for a resumed run; undefined means "as the checkpoint has it". */
export interface ResumeOptions {
  numEpochs?: number;
  lr?: number;
  batchSize?: number;
  resize?: number;
  seed?: number;
  oneByOneCount?: number;
  optimizer?: OptimizerName;
  momentum?: number;
  lrSchedule?: LrSchedule;
  warmupSteps?: number;
  init?: KernelInit;
}

/**
 * The configs a resumed run continues with: the checkpoint's, with `numEpochs` and `lr` taken
 * from `given` when set (a smaller learning rate after a divergence is a resume; with a
 * schedule, `lr` is its new peak and more epochs stretch it). Any other
 * option that differs from the checkpoint is a ConfigError naming it (through `flags`, e.g.
 * `resize` → `--resize`), as is asking for no more epochs than are done.
 */
export function resumeConfigs(
  state: CheckpointState, given: ResumeOptions, dir: string, flags: Record<string, string> = {},
): { train: TrainConfig; model: NinConfig } {
  const flag = (name: string) => flags[name] ?? name;
  const saved = resolveTrainConfig(state.train);
  const fixed: [keyof ResumeOptions, number | string | undefined][] = [
    ['resize', saved.resize], ['batchSize', saved.batchSize], ['seed', saved.seed],
    ['oneByOneCount', state.model.oneByOneCount], ['optimizer', saved.optimizer], ['momentum', saved.momentum],
    ['lrSchedule', saved.lrSchedule], ['warmupSteps', saved.warmupSteps], ['init', resolveNinConfig(state.model).init],
  ];
  for (const [name, saved] of fixed) {
    if (given[name] !== undefined && given[name] !== saved) {
      throw new ConfigError(`cannot resume from ${dir}: ${flag(name)} ${given[name]} differs from the checkpoint's ` +
        `${saved}; leave ${flag(name)} out to continue with ${saved}, or start afresh in another checkpoint directory`);
    }
  }
  const train = resolveTrainConfig({
    ...state.train,
    numEpochs: given.numEpochs ?? state.train.numEpochs, lr: given.lr ?? state.train.lr,
  });
  const done = state.epochsCompleted;
  if (train.numEpochs < done || (train.numEpochs === done && state.steps === 0)) {
    throw new ConfigError(`the checkpoint in ${dir} has already completed ${done} epoch${done === 1 ? '' : 's'}` +
      `${given.numEpochs === undefined ? '' : ` (asked for ${given.numEpochs})`}; pass ${flag('numEpochs')} N with ` +
      `N > ${done} to train further`);
  }
  return { train, model: resolveNinConfig(state.model) };
}
