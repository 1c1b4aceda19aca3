/**
 * Checkpoints: the saved model is standard TensorFlow.js layers format (tf.loadLayersModel
 * reads it back to the same weights and predictions), writes are atomic (leftovers of a
 * killed write are ignored and cleaned), damaged files give one-line ConfigErrors, and a run
 * resumed from a checkpoint saved mid-epoch ends exactly where an uninterrupted one does.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bandSplit } from '../fixtures';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../../lib/kernels/backend';
import {
  CheckpointContents, CheckpointState, checkpointName, latestCheckpoint, loadCheckpoint, loadModelFromDir,
  saveCheckpoint,
} from '../../lib/storage/checkpoint';
import { checkRunOptions, resumeConfigs as resumeInFields } from '../../lib/training/run';
import { TRAIN_DEFAULTS } from '../../lib/core/trainConfig';
import { nin, resolveNinConfig } from '../../lib/core/model';
import { disposeOptimizer, learningRateAt, makeOptimizer, NinOptimizer } from '../../lib/core/optimizers';
import type { EpochResult } from '../../lib/core/history';
import { train } from '../trainModel';
import { resolveTrainConfig, TrainConfig } from '../../lib/core/trainConfig';
import { ConfigError } from '../../lib/core/validate';

before(async () => {
  await selectBackend('wasm');
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-checkpoint-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => path.join(tmp, `run${++dirCount}`);

const data = { train: bandSplit(32), test: bandSplit(16, 3) };
const trainConfig: TrainConfig = resolveTrainConfig({ numEpochs: 2, batchSize: 8, lr: 0.1, resize: 67, seed: 7 });
const modelConfig = resolveNinConfig({ inputSize: 67, seed: 7 });

const result = (epoch: number): EpochResult => ({ epoch, trainLoss: 2.3, trainAcc: 0.1, testAcc: 0.1, examplesPerSec: 9, seconds: 1 });
const contentsOf = (epochs: number): CheckpointContents => ({
  history: Array.from({ length: epochs }, (_, i) => result(i + 1)), train: trainConfig, model: modelConfig,
  data: { trainCount: 32, testCount: 16 }, backend: 'wasm',
});
const contents = contentsOf;

/** Asserts `fn` rejects with a one-line ConfigError matching every pattern. */
async function rejectsConfigError(fn: () => Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

/** Replaces a checkpoint's state.json by `text`, with its checksum in state.sha256 to match (as a save writes it). */
function writeState(folder: string, text: string): void {
  fs.writeFileSync(path.join(folder, 'state.json'), text);
  fs.writeFileSync(path.join(folder, 'state.sha256'), `${crypto.createHash('sha256').update(text).digest('hex')}  state.json\n`);
}

const untimed = ({ examplesPerSec: _s, seconds: _t, ...rest }: EpochResult) => rest;
const weightsOf = (model: tfl.LayersModel) => model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));

/** A fresh model trained with `config` from start to end: its history and final weights. */
async function uninterrupted(config: TrainConfig): Promise<{ epochs: EpochResult[]; weights: Float32Array[] }> {
  const model = nin(modelConfig);
  try {
    const history = await train(model, data, config);
    return { epochs: history.epochs, weights: weightsOf(model) };
  } finally {
    model.dispose();
  }
}

/** A fresh model trained with `config` and stopped after step 3 of epoch 1 (of 4); the caller disposes it. */
async function stoppedAfterThreeSteps(config: TrainConfig, optimizer?: NinOptimizer) {
  const model = nin(modelConfig);
  const controller = new AbortController();
  const history = await train(model, data, config, {
    onBatchEnd: ({ epoch, batch }) => { if (epoch === 1 && batch === 2) controller.abort(); },
  }, { optimizer, signal: controller.signal });
  assert.equal(history.interrupted?.steps, 3);
  return { model, stop: history.interrupted! };
}

describe('saveCheckpoint → files in layers format', () => {
  let model: tfl.Sequential;
  let dir: string;
  let saved: Awaited<ReturnType<typeof saveCheckpoint>>;
  before(async () => {
    model = nin(modelConfig);
    dir = freshDir();
    saved = await saveCheckpoint(dir, model, contents(1));
  });
  after(() => model.dispose());

  test('latest.json points at epoch-0001, which holds model.json, weights.bin and state.json', () => {
    assert.equal(saved.name, 'epoch-0001');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['epoch-0001', 'latest.json']);
    assert.deepEqual(fs.readdirSync(saved.path).sort(), ['model.json', 'state.json', 'state.sha256', 'weights.bin']);
    const latest = JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8'));
    assert.equal(latest.checkpoint, 'epoch-0001');
    assert.equal(latest.epochsCompleted, 1);
  });

  test('model.json is a standard layers model; the weights are all there, and dropout carries no seed', () => {
    const json = JSON.parse(fs.readFileSync(path.join(saved.path, 'model.json'), 'utf8'));
    assert.equal(json.format, 'layers-model');
    assert.match(json.generatedBy, /^TensorFlow\.js tfjs-layers v/);
    assert.ok('convertedBy' in json);
    assert.equal(json.modelTopology.class_name, 'Sequential');
    assert.equal(json.weightsManifest.length, 1);
    assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
    const specs = json.weightsManifest[0].weights as { shape: number[]; dtype: string }[];
    assert.equal(specs.length, model.getWeights().length);
    const floats = specs.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(floats, 1992166, "the chapter's parameter count");
    assert.equal(fs.statSync(path.join(saved.path, 'weights.bin')).size, floats * 4);
    const dropout = json.modelTopology.config.layers.find((l: { class_name: string }) => l.class_name === 'Dropout');
    assert.equal(dropout.config.seed ?? undefined, undefined);
  });

  test('state.json: position, history, configs, seed, and an SGD optimizer without slots', () => {
    const state = JSON.parse(fs.readFileSync(path.join(saved.path, 'state.json'), 'utf8')) as CheckpointState;
    assert.equal(state.epochsCompleted, 1);
    assert.equal(state.steps, 0);
    assert.deepEqual(state.history, [result(1)]);
    assert.deepEqual(state.train, JSON.parse(JSON.stringify(trainConfig)));
    assert.deepEqual(state.model, JSON.parse(JSON.stringify(modelConfig)));
    assert.deepEqual(state.optimizer, { name: 'sgd', lr: 0.1, momentum: 0, iterations: 4, slots: [] });
    assert.ok(!fs.existsSync(path.join(saved.path, 'optimizer.bin')), 'plain SGD has no slots to save');
    assert.equal(state.random.seed, 7);
  });

  test('plain tfjs loads it (tf.loadLayersModel + fromMemory) to identical weights and predictions', async () => {
    const json = JSON.parse(fs.readFileSync(path.join(saved.path, 'model.json'), 'utf8'));
    const bytes = fs.readFileSync(path.join(saved.path, 'weights.bin'));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights,
      weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    }));
    try {
      const want = weightsOf(model);
      weightsOf(loaded).forEach((w, i) => assert.deepEqual(w, want[i], `weight ${i}`));
      const x = tf.randomUniform([3, 67, 67, 1], 0, 1, 'float32', 1);
      const [a, b] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
      assert.deepEqual(b.dataSync(), a.dataSync());
      tf.dispose([x, a, b]);
    } finally {
      loaded.dispose();
    }
  });

  test('loadCheckpoint and loadModelFromDir give the same weights back, and the state', async () => {
    const fromCheckpoint = await loadCheckpoint(dir);
    const fromFolder = await loadModelFromDir(saved.path);
    const fromDir = await loadModelFromDir(dir);
    try {
      assert.equal(fromCheckpoint.state.epochsCompleted, 1);
      assert.equal(fromDir.state?.epochsCompleted, 1);
      assert.equal(fromFolder.state, undefined);
      assert.equal(fromDir.path, saved.path);
      const want = weightsOf(model);
      for (const m of [fromCheckpoint.model, fromFolder.model, fromDir.model]) {
        weightsOf(m).forEach((w, i) => assert.deepEqual(w, want[i], `weight ${i}`));
      }
    } finally {
      [fromCheckpoint.model, fromFolder.model, fromDir.model].forEach((m) => m.dispose());
    }
  });

  test('a later save replaces the earlier one (leaving no tensors); saving the same position again changes nothing', async () => {
    const tensors = tf.memory().numTensors;
    const second = await saveCheckpoint(dir, model, contents(2));
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(second.name, 'epoch-0002');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['epoch-0002', 'latest.json']);
    const before = fs.readFileSync(path.join(dir, 'latest.json'), 'utf8');
    const again = await saveCheckpoint(dir, model, contents(2));
    assert.equal(again.path, second.path);
    assert.equal(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8'), before);
  });
});

describe('atomicity and damaged checkpoints', () => {
  let model: tfl.Sequential;
  // A smaller NiN (no 1×1 convolutions) for speed; its checkpoints say so.
  before(() => { model = nin({ ...modelConfig, oneByOneCount: 0 }); });
  const contents = (epochs: number): CheckpointContents => ({ ...contentsOf(epochs), model: { ...modelConfig, oneByOneCount: 0 } });
  after(() => model.dispose());

  test('a killed write (epoch-0002.tmp-123) and a stale folder are ignored: load gives epoch 1 and cleans them', async () => {
    const dir = freshDir();
    await saveCheckpoint(dir, model, contents(1));
    // What a kill during the next save can leave: a half-written folder, a finished but
    // never-pointed-at one, and a pointer that was being written.
    fs.mkdirSync(path.join(dir, 'epoch-0002.tmp-123'));
    fs.writeFileSync(path.join(dir, 'epoch-0002.tmp-123', 'weights.bin'), 'half');
    fs.cpSync(path.join(dir, 'epoch-0001'), path.join(dir, 'epoch-0002-step-000003'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'latest.json.tmp-123'), '{"checkpoint": "epoch-00');
    const loaded = await loadCheckpoint(dir);
    loaded.model.dispose();
    assert.equal(loaded.name, 'epoch-0001');
    assert.equal(loaded.state.epochsCompleted, 1);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['epoch-0001', 'latest.json']);
  });

  test('missing directory, no checkpoint yet, corrupt latest.json: one line naming the file and what to do', async () => {
    const missing = path.join(tmp, 'nope');
    await rejectsConfigError(() => loadCheckpoint(missing), /nope does not exist/, /without resume/);
    const empty = freshDir();
    fs.mkdirSync(empty);
    await rejectsConfigError(() => loadCheckpoint(empty), /holds no complete checkpoint yet/, /latest\.json/);
    for (const [text, why] of [['{"checkpoint": "epo', /is not valid JSON/], ['', /is empty/], ['[1]', /not a nin-tfjs-checkpoint pointer/]] as const) {
      const dir = freshDir();
      await saveCheckpoint(dir, model, contents(1));
      fs.writeFileSync(path.join(dir, 'latest.json'), text);
      // The complete epoch-0001 beside the damaged pointer is used, and the pointer's problem said.
      const recovered = await loadCheckpoint(dir);
      recovered.model.dispose();
      disposeOptimizer(recovered.optimizer);
      assert.equal(recovered.name, 'epoch-0001');
      assert.match(recovered.recovered!, new RegExp(`${dir}/latest\\.json`));
      assert.match(recovered.recovered!, why);
      assert.match(recovered.recovered!, /using epoch-0001, the newest complete checkpoint there/);
      // With no complete checkpoint left, the damaged pointer is the error.
      fs.rmSync(path.join(dir, 'epoch-0001', 'state.json'));
      await rejectsConfigError(() => loadCheckpoint(dir), new RegExp(`${dir}/latest\\.json`), why);
    }
  });

  test('a pointer to a missing folder, a damaged state.json, a truncated weights.bin: one-line errors', async () => {
    const dir = freshDir();
    const { path: folder } = await saveCheckpoint(dir, model, contents(1));
    const weights = path.join(folder, 'weights.bin');
    const full = fs.readFileSync(weights);
    fs.writeFileSync(weights, full.subarray(0, 1000));
    // The checksum in state.json finds it first; a folder loaded by itself still says how much is missing.
    await rejectsConfigError(() => loadCheckpoint(dir), /weights\.bin does not match its checksum in .*state\.json: the file is damaged/);
    await rejectsConfigError(() => loadModelFromDir(folder), /truncated/);
    fs.writeFileSync(weights, full);
    writeState(folder, '{"format": "nin-tfjs-checkpoint", "version": 2, "train": {"lr": -1}}');
    await rejectsConfigError(() => loadCheckpoint(dir), /state\.json: lr must be a positive finite number/, /damaged/);
    fs.rmSync(folder, { recursive: true });
    await rejectsConfigError(() => loadCheckpoint(dir), /names epoch-0001, which is missing/);
  });

  test('loadModelFromDir: neither model.json nor a checkpoint, or garbage model.json', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    await rejectsConfigError(() => loadModelFromDir(dir), /holds neither model\.json nor a checkpoint/);
    fs.writeFileSync(path.join(dir, 'model.json'), 'garbage');
    await rejectsConfigError(() => loadModelFromDir(dir), /model\.json is not valid JSON/);
    fs.writeFileSync(path.join(dir, 'model.json'), '{"modelTopology": {}, "weightsManifest": []}');
    await rejectsConfigError(() => loadModelFromDir(dir), /could not be loaded as a TensorFlow\.js layers model/);
  });
});

/** resumeConfigs of a run given these fields (training's or the model's), its errors told with `names` for the fields (as the command line does). */
function resumeConfigs(state: CheckpointState, given: Record<string, unknown>, dir: string, names: Record<string, string> = {}) {
  const part = (ofTraining: boolean) => Object.fromEntries(Object.entries(given).filter(([k]) => (k in TRAIN_DEFAULTS) === ofTraining));
  try {
    return resumeInFields(state, checkRunOptions({ train: part(true), model: part(false), checkpointDir: dir, resume: 'always' }), dir);
  } catch (err) {
    throw err instanceof ConfigError ? new ConfigError(err.messageFor(names)) : err;
  }
}

describe('resuming', () => {
  test('resumeConfigs keeps the checkpoint\'s config, takes epochs and lr, and names a conflicting option', () => {
    const state = { ...contents(1), epochsCompleted: 1, steps: 0 } as CheckpointState;
    const flags = { resize: '--resize', numEpochs: '--epochs' };
    const same = resumeConfigs(state, {}, 'D', flags);
    assert.deepEqual(same.train, trainConfig);
    assert.deepEqual(same.model, modelConfig);
    const more = resumeConfigs(state, { numEpochs: 4, lr: 0.01, resize: 67, seed: 7 }, 'D', flags);
    assert.deepEqual([more.train.numEpochs, more.train.lr], [4, 0.01]);
    assert.throws(() => resumeConfigs(state, { resize: 96 }, 'D', flags),
      /cannot resume from D: --resize 96 differs from the checkpoint's 67; leave --resize out/);
    assert.throws(() => resumeConfigs(state, { batchSize: 16 }, 'D'), /batchSize 16 differs from the checkpoint's 8/);
    assert.throws(() => resumeConfigs(state, { seed: 1 }, 'D'), /seed 1 differs from the checkpoint's 7/);
    assert.throws(() => resumeConfigs(state, { oneByOneCount: 1 }, 'D'), /oneByOneCount 1 differs from the checkpoint's 2/);
    assert.throws(() => resumeConfigs(state, { momentum: 0.9 }, 'D'), /momentum 0\.9 differs from the checkpoint's 0/);
    assert.throws(() => resumeConfigs(state, { lrSchedule: 'cosine' }, 'D'), /lrSchedule cosine differs from the checkpoint's constant/);
    const done = { ...contents(2), epochsCompleted: 2, steps: 0 } as CheckpointState;
    assert.throws(() => resumeConfigs(done, {}, 'D', flags), /already completed 2 epochs; pass --epochs N with N > 2/);
  });

  test('train, stop mid-epoch, save, load, resume: bitwise the run that never stopped', async () => {
    const whole = await uninterrupted(trainConfig);

    // Stopped after step 3 of epoch 1 (of 4), saved, the process "ends".
    const dir = freshDir();
    const { model: first, stop } = await stoppedAfterThreeSteps(trainConfig);
    const saved = await saveCheckpoint(dir, first, { ...contents(0), partial: stop });
    first.dispose();
    assert.equal(saved.name, checkpointName(0, 3));
    assert.equal(latestCheckpoint(dir).state.optimizer.iterations, 3);

    // A new start from the files alone.
    const { model, state } = await loadCheckpoint(dir);
    try {
      const resumed = await train(model, data, state.train, {}, { resume: { epochs: state.history, partial: state.partial } });
      assert.deepEqual(resumed.epochs.map(untimed), whole.epochs.map(untimed), 'losses and accuracies bit for bit');
      const weights = weightsOf(model);
      whole.weights.forEach((w, i) => assert.deepEqual(weights[i], w, `weight ${i}`));
    } finally {
      model.dispose();
    }
  });
});

/** Adam's running powers of β1 and β2, which tfjs keeps as scalar variables. */
const adamBetas = (o: tf.Optimizer) => {
  const { accBeta1, accBeta2 } = o as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
  return [accBeta1.dataSync()[0], accBeta2.dataSync()[0]];
};

const statefulRuns: [string, TrainConfig, number][] = [
  // [what, config, slots per trainable weight]
  ['momentum and a cosine schedule', resolveTrainConfig({ ...trainConfig, lr: 0.05, momentum: 0.9, lrSchedule: 'cosine' }), 1],
  ['Adam and a cosine schedule', resolveTrainConfig({ ...trainConfig, optimizer: 'adam', lr: 0.002, lrSchedule: 'cosine' }), 2],
];

for (const [what, heavy, slotsPerWeight] of statefulRuns) describe(what, () => {
  const kind = heavy.optimizer === 'adam' ? 'adam' : 'momentum';
  const heavyContents = (): CheckpointContents => ({ ...contents(0), train: heavy });

  test('stop mid-epoch, save (state in optimizer.bin), load, resume: bitwise the run that never stopped', async () => {
    const whole = await uninterrupted(heavy);
    const dir = freshDir();
    const optimizer = makeOptimizer(heavy);
    const { model: first, stop } = await stoppedAfterThreeSteps(heavy, optimizer);
    const saved = await saveCheckpoint(dir, first, { ...heavyContents(), partial: stop }, optimizer);
    const weightCount = first.trainableWeights.length;
    first.dispose();
    disposeOptimizer(optimizer);
    const { optimizer: record } = saved.state;
    assert.equal(record.name, kind);
    assert.equal(record.iterations, 3);
    assert.equal(record.lr, learningRateAt(heavy, 3, 4), 'the rate of the next step');
    assert.equal(record.slots.length, slotsPerWeight * weightCount, 'slots per trainable weight');
    if (kind === 'adam') {
      const [b1, b2] = record.betaPowers!;
      assert.ok(Math.abs(b1 - 0.9 ** 4) < 1e-6 && Math.abs(b2 - 0.999 ** 4) < 1e-6, `β^(t+1) after 3 steps: ${b1}, ${b2}`);
    } else {
      assert.equal(record.betaPowers, undefined);
    }
    const floats = record.slots.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(fs.statSync(path.join(saved.path, 'optimizer.bin')).size, floats * 4);

    const before = tf.memory().numTensors;
    const loaded = await loadCheckpoint(dir);
    try {
      assert.equal(loaded.optimizer.getClassName(), kind === 'adam' ? 'Adam' : 'Momentum');
      const resumed = await train(loaded.model, data, loaded.state.train, {},
        { resume: { epochs: loaded.state.history, partial: loaded.state.partial }, optimizer: loaded.optimizer });
      assert.deepEqual(resumed.epochs.map(untimed), whole.epochs.map(untimed), 'losses and accuracies bit for bit');
      const weights = weightsOf(loaded.model);
      whole.weights.forEach((w, i) => assert.deepEqual(weights[i], w, `weight ${i}`));
    } finally {
      loaded.model.dispose();
      disposeOptimizer(loaded.optimizer);
    }
    assert.equal(tf.memory().numTensors, before, 'model and restored optimizer freed');
  });

  test('without its state the same resume is a different run (so the test above can fail)', async () => {
    const whole = await uninterrupted(heavy);
    const optimizer = makeOptimizer(heavy);
    const { model: first, stop } = await stoppedAfterThreeSteps(heavy, optimizer);
    disposeOptimizer(optimizer);
    const fresh = makeOptimizer(heavy); // no velocity, no averages: only its step counter is where the run stopped
    const iter = tf.scalar(stop.steps, 'int32');
    await fresh.setWeights([{ name: 'iter', tensor: iter }]);
    iter.dispose();
    try {
      const resumed = await train(first, data, heavy, {}, { resume: { epochs: [], partial: stop }, optimizer: fresh });
      assert.notEqual(resumed.epochs[1].trainLoss, whole.epochs[1].trainLoss);
    } finally {
      first.dispose();
      disposeOptimizer(fresh);
    }
  });

  test(`saving ${kind === "adam" ? "an Adam" : "a momentum"} run without its optimizer is refused; a truncated optimizer.bin is a one-line error`, async () => {
    const model = nin(modelConfig);
    const optimizer = makeOptimizer(heavy);
    try {
      await assert.rejects(saveCheckpoint(freshDir(), model, { ...contents(1), train: heavy }), /must pass its optimizer/);
      await train(model, data, { ...heavy, numEpochs: 1 }, {}, { optimizer });
      const dir = freshDir();
      const saved = await saveCheckpoint(dir, model, { ...contents(1), train: heavy }, optimizer);
      const stateFile = path.join(saved.path, 'state.json');
      const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
      writeState(saved.path, JSON.stringify({ ...state, optimizer: { ...state.optimizer, slots: state.optimizer.slots.slice(1) } }));
      await rejectsConfigError(() => loadCheckpoint(dir), /lists \d+ optimizer slots that do not match the model's \d+ trainable weights/);
      writeState(saved.path, JSON.stringify({ ...state, optimizer: { ...state.optimizer, name: 'sgd' } }));
      await rejectsConfigError(() => loadCheckpoint(dir), /no valid optimizer record/);
      writeState(saved.path, JSON.stringify(state));
      const file = path.join(saved.path, 'optimizer.bin');
      fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 100));
      await rejectsConfigError(() => loadCheckpoint(dir), /optimizer\.bin holds 100 bytes but state\.json describes \d+/, /delete .* to start afresh/);
      fs.rmSync(file);
      await rejectsConfigError(() => loadCheckpoint(dir), /optimizer\.bin cannot be read \(ENOENT\)/);
    } finally {
      model.dispose();
      disposeOptimizer(optimizer);
    }
  });
});

test('Adam\'s powers of β come back exactly as they were, not recomputed', async () => {
  const config = resolveTrainConfig({ ...trainConfig, optimizer: 'adam', lr: 0.002 });
  const model = nin(modelConfig);
  const optimizer = makeOptimizer(config);
  const controller = new AbortController();
  const dir = freshDir();
  try {
    const history = await train(model, data, config, {
      onBatchEnd: ({ epoch, batch }) => { if (epoch === 2 && batch === 0) controller.abort(); },
    }, { optimizer, signal: controller.signal });
    assert.deepEqual(history.interrupted?.steps, 1); // 4 + 1 = 5 steps: β^6 is held
    await saveCheckpoint(dir, model, { ...contents(1), train: config, partial: history.interrupted }, optimizer);
  } finally {
    model.dispose();
  }
  const held = adamBetas(optimizer);
  disposeOptimizer(optimizer);
  // tfjs's setWeights sets them to pow(β, t + 1), which for 0.999 at t = 5 rounds differently
  // from the running product the optimizer held; a resumed run must go on with the latter.
  const recomputed = tf.tidy(() => tf.pow(0.999, 6).dataSync()[0]);
  assert.notEqual(recomputed, held[1], 'pow and the running product agree here: pick another step count');
  const loaded = await loadCheckpoint(dir);
  try {
    assert.deepEqual(adamBetas(loaded.optimizer), held);
  } finally {
    loaded.model.dispose();
    disposeOptimizer(loaded.optimizer);
  }
});
