/**
 * Training health: a dead network and a NaN network built on purpose are each stopped within
 * a few steps with a message saying what happened and where; a live network on its plateau is
 * not; nothing non-finite is ever saved or evaluated.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bandSplit } from '../fixtures';
import { train } from '../trainModel';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../../lib/kernels/backend';
import { nin, resolveNinConfig } from '../../lib/core/model';
import { resolveTrainConfig } from '../../lib/core/trainConfig';
import { sgdStep } from '../../lib/training/loop';
import { disposeOptimizer, makeOptimizer } from '../../lib/core/optimizers';
import {
  DeadNetworkError, DivergedError, HealthMonitor, logitSpread, nonFiniteWeights, resolveHealthConfig, smallerLrHint,
  StepVitals, suggestedLr,
} from '../../lib/core/health';
import { latestCheckpoint, loadModelFromDir, saveCheckpoint } from '../../lib/storage/checkpoint';
import { saveLayersModel } from '../../lib/storage/layersFolder';
import { evaluateModel } from '../../lib/core/evaluate';
import { ConfigError } from '../../lib/core/validate';

before(async () => {
  await selectBackend('wasm');
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-health-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const data = { train: bandSplit(64), test: bandSplit(16, 3) };

/** The command line's names for the fields the messages name (lib/frontends/cli.ts's FLAGS). */
const FLAGS = { lr: '--lr', warmupSteps: '--warmup-steps', classBlockBias: '--class-block-bias', init: '--init', seed: '--seed' };

/** Sets every weight whose name matches `pattern` to `value`. */
function setWeights(model: tfl.LayersModel, pattern: RegExp, value: number): void {
  for (const w of model.weights.filter((x) => pattern.test(x.originalName))) {
    const t = tf.fill(w.shape as number[], value);
    w.write(t);
    t.dispose();
  }
}

/** The chapter's NiN at 67 px whose last block's biases are far below zero: dead from step 1. */
function deadModel(): tfl.LayersModel {
  const model = nin({ inputSize: 67, seed: 3 });
  setWeights(model, /block4_conv0\/bias/, -100);
  return model;
}

test('resolveHealthConfig: default 20 steps; a bad value is named', () => {
  assert.deepEqual(resolveHealthConfig(), { deadAfterSteps: 20 });
  assert.throws(() => resolveHealthConfig({ deadAfterSteps: 0 }), (e: unknown) => e instanceof ConfigError && /deadAfterSteps/.test(e.message));
});

test('logitSpread: 0 exactly when every row is the same, whatever the values', () => {
  const same = tf.tensor2d([[0.1, -2, 3], [0.1, -2, 3]]);
  const differ = tf.tensor2d([[0.1, -2, 3], [0.1, -2, 3.0001]]);
  const a = logitSpread(same);
  const b = logitSpread(differ);
  assert.equal(a.dataSync()[0], 0);
  assert.ok(b.dataSync()[0] > 0);
  tf.dispose([same, differ, a, b]);
});

test('a dead network (last block biases at -100) stops within 20 steps, naming the epoch, step and what to try', async () => {
  const before = tf.memory().numTensors;
  const model = deadModel();
  let steps = 0;
  try {
    await assert.rejects(
      train(model, { train: bandSplit(128), test: data.test }, { numEpochs: 10, batchSize: 4, lr: 0.1, resize: 67, seed: 1 },
        { onBatchEnd: () => { steps++; } }),
      (err: unknown) => {
        assert.ok(err instanceof DeadNetworkError, `expected a DeadNetworkError, got ${String(err)}`);
        assert.match(err.message, /^the network died at epoch 1, step 20 of 32: for 20 steps it has given every image the same scores/);
        assert.match(err.message, /loss ln 10/);
        assert.match(err.message, /warm-up/);
        assert.deepEqual(err.position, { epoch: 1, step: 20, steps: 32 });
        // Fields are data: the library names them as its configs do, the command line by its flags.
        assert.match(err.message, /warm-up \(warmupSteps\), a smaller learning rate than 0\.1 \(e\.g\. lr 0\.01\), a starting bias of 0\.1 in the last block \(classBlockBias 0\.1\), He initialisation \(init he\), or another seed$/);
        assert.match(err.messageFor(FLAGS), /warm-up \(--warmup-steps\), a smaller learning rate than 0\.1 \(e\.g\. --lr 0\.01\), a starting bias of 0\.1 in the last block \(--class-block-bias 0\.1\), He initialisation \(--init he\), or another --seed$/);
        assert.doesNotMatch(err.message, /--/, 'no command-line flag in the library\'s words');
        assert.equal(err.suggestedLr, 0.01);
        return true;
      });
    assert.equal(steps, 19, 'the 20th flat step throws before its callback');
  } finally {
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

test('a network that dies in the last steps of an epoch is settled before the epoch is reported', async () => {
  const model = deadModel();
  const ends: number[] = [];
  try {
    await assert.rejects(
      train(model, data, { numEpochs: 1, batchSize: 16, lr: 0.1, resize: 67, seed: 1 }, { onEpochEnd: (r) => { ends.push(r.epoch); } }),
      (err: unknown) => err instanceof DeadNetworkError && /at epoch 1, step 4 of 4: for 4 steps/.test(err.message));
    assert.deepEqual(ends, [], 'no epoch result (and so no checkpoint) for a dead network');
  } finally {
    model.dispose();
  }
});

test('a live network on its plateau is not taken for dead (a rate so small the loss stays at ln 10)', async () => {
  const model = nin({ inputSize: 67, seed: 3 });
  const losses: number[] = [];
  try {
    const h = await train(model, data, { numEpochs: 3, batchSize: 4, lr: 1e-7, resize: 67, seed: 1 },
      { onBatchEnd: (b) => { losses.push(b.loss); } });
    assert.equal(h.epochs.length, 3);
    assert.equal(losses.length, 48, 'past the 20-step window');
    assert.ok(losses.every((l) => Math.abs(l - Math.log(10)) < 0.01), 'still on the plateau');
  } finally {
    model.dispose();
  }
});

/** A step of a live network that moved its weights, over `images` images, whose logits differed when it could tell. */
const liveStep = (images: number): StepVitals => ({ loss: 2.3, logitSpread: images > 1 ? 0.2 : 0, gradAbsSum: 1.5, spreadImages: images });

test('one image cannot show a flat network: a thousand one-image steps that move weights are not taken for dead', () => {
  const model = nin({ inputSize: 67, seed: 3 });
  try {
    const monitor = new HealthMonitor(model, 0.1);
    for (let step = 1; step <= 1000; step++) monitor.check(liveStep(1), { epoch: 1, step, steps: 1000 });
  } finally {
    model.dispose();
  }
});

test('a one-image step neither counts as flat nor as alive; a step that moves no weight is flat whatever its size', () => {
  const model = nin({ inputSize: 67, seed: 3 });
  const at = (step: number) => ({ epoch: 1, step, steps: 100 });
  const flat = (images: number): StepVitals => ({ loss: Math.log(10), logitSpread: 0, gradAbsSum: 2, spreadImages: images });
  try {
    const interleaved = new HealthMonitor(model, 0.1);
    for (let step = 1; step <= 19; step++) interleaved.check(flat(8), at(step));
    interleaved.check(liveStep(1), at(20)); // says nothing: the run of flat steps goes on
    assert.throws(() => interleaved.check(flat(8), at(21)),
      (err: unknown) => err instanceof DeadNetworkError && /^the network died at epoch 1, step 21 of 100: for 20 steps/.test(err.message));

    const noGradient = new HealthMonitor(model, 0.1);
    for (let step = 1; step <= 19; step++) noGradient.check({ loss: 2.3, logitSpread: 0, gradAbsSum: 0, spreadImages: 1 }, at(step));
    assert.throws(() => noGradient.check({ loss: 2.3, logitSpread: 0, gradAbsSum: 0, spreadImages: 1 }, at(20)),
      (err: unknown) => err instanceof DeadNetworkError && /and no gradient reaches any weight/.test(err.message));
  } finally {
    model.dispose();
  }
});

test('the epoch-end check with one test image judges nothing; with two or more it stops a network whose steps could not tell', () => {
  const live = nin({ inputSize: 67, seed: 3 });
  const dead = deadModel();
  const one = tf.zeros([1, 67, 67, 1]) as tf.Tensor4D;
  const sixteen = tf.randomUniform([16, 67, 67, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
  const end = { epoch: 1, step: 2, steps: 2 };
  try {
    // The last step saw one image (spread 0 whatever the network), the test split is one image.
    const afterOne = new HealthMonitor(live, 0.1);
    afterOne.check(liveStep(32), { epoch: 1, step: 1, steps: 2 });
    afterOne.check({ loss: 2.3, logitSpread: 0, gradAbsSum: 1.5 }, end); // no spreadImages: read as a flat step
    assert.deepEqual(afterOne.checkEpochEnd(one, liveStep(1), end), []);
    // A dead network trained one image at a time: no step could tell, the test batch does.
    const deadOnes = new HealthMonitor(dead, 0.1);
    for (let step = 1; step <= 2; step++) deadOnes.check(liveStep(1), { epoch: 1, step, steps: 2 });
    assert.deepEqual(deadOnes.checkEpochEnd(one, liveStep(1), end), [], 'one test image: nothing to judge');
    assert.throws(() => deadOnes.checkEpochEnd(sixteen, liveStep(1), end), (err: unknown) => {
      assert.ok(err instanceof DeadNetworkError, String(err));
      assert.match(err.message, /^the network died at epoch 1, step 2 of 2: it gives all 16 images of the first test batch the same scores \(its steps, of one image each, could not tell\): a ReLU layer/);
      return true;
    });
    // The same monitor on a live network stays quiet.
    const liveOnes = new HealthMonitor(live, 0.1);
    for (let step = 1; step <= 2; step++) liveOnes.check(liveStep(1), { epoch: 1, step, steps: 2 });
    assert.doesNotThrow(() => liveOnes.checkEpochEnd(sixteen, liveStep(1), end));
  } finally {
    tf.dispose([one, sixteen]);
    live.dispose();
    dead.dispose();
  }
});

test('a training split of 33 with batch 32 (a last batch of one image) and a test split of one image trains to the end', async () => {
  const model = nin({ inputSize: 67, seed: 3 });
  try {
    const h = await train(model, { train: bandSplit(33), test: bandSplit(1, 3) }, { numEpochs: 2, batchSize: 32, lr: 0.05, resize: 67, seed: 1 });
    assert.equal(h.epochs.length, 2);
  } finally {
    model.dispose();
  }
});

test('--batch-size 1 trains a live network past the 20-step window', async () => {
  assert.equal(probeSpreadImages(), 1, 'a one-image step says its spread was measured over one image');
  const model = nin({ inputSize: 67, seed: 3 });
  let steps = 0;
  try {
    const h = await train(model, { train: bandSplit(24), test: bandSplit(1, 3) }, { numEpochs: 2, batchSize: 1, lr: 0.01, resize: 67, seed: 1 },
      { onBatchEnd: () => { steps++; } });
    assert.equal(h.epochs.length, 2);
    assert.equal(steps, 48);
  } finally {
    model.dispose();
  }
});

/** What sgdStep reports as `spreadImages` for a step over one image (undefined until it reports it). */
function probeSpreadImages(): number | undefined {
  const model = nin({ inputSize: 67, seed: 3 });
  const optimizer = makeOptimizer({ lr: 1e-9, momentum: 0 });
  const xs = tf.zeros([1, 67, 67, 1]) as tf.Tensor4D;
  const ys = tf.tensor1d([3], 'int32');
  try {
    return sgdStep(model, optimizer, xs, ys, 1).spreadImages;
  } finally {
    tf.dispose([xs, ys]);
    disposeOptimizer(optimizer);
    model.dispose();
  }
}

test('suggestedLr: a tenth, to 3 significant digits; smallerLrHint names the field as it is told', () => {
  assert.equal(suggestedLr(0.1), 0.01);
  assert.equal(suggestedLr(16), 1.6);
  assert.equal(suggestedLr(0.0333333), 0.00333);
  assert.equal(suggestedLr(1e20), 1e19);
  assert.equal(smallerLrHint(0.05), 'try a smaller learning rate than 0.05 (e.g. lr 0.005)');
  assert.equal(smallerLrHint(0.05, (f) => `--${f}`), 'try a smaller learning rate than 0.05 (e.g. --lr 0.005)');
  assert.equal(smallerLrHint(1e20), 'try a smaller learning rate than 1e+20 (e.g. lr 1e+19)');
});

test('a class whose channel of the last block stays silent is named in a warning after two epochs; training goes on', async () => {
  const model = nin({ inputSize: 67, seed: 3, init: 'he' });
  const bias = model.weights.find((w) => w.originalName === 'block4_conv2/bias')!;
  const values = Array.from(bias.read().dataSync());
  values[3] = -100;
  const t = tf.tensor1d(values);
  bias.write(t);
  t.dispose();
  const warnings: string[] = [];
  const plain: string[] = [];
  try {
    const h = await train(model, data, { numEpochs: 3, batchSize: 8, lr: 1e-7, resize: 67, seed: 1 },
      { onWarning: (w) => { warnings.push(w.messageFor(FLAGS)); plain.push(w.message); } });
    assert.equal(h.epochs.length, 3);
    assert.ok(h.epochs.every((e) => e.silentClasses?.includes(3)), 'each epoch records it');
    assert.equal(warnings.length, 1, 'once, when first silent at two epoch ends in a row (not again after epoch 3)');
    assert.match(warnings[0], /^after epochs 1 and 2, classes? (\d \([^)]+\), )*3 \(dress\)(, \d \([^)]+\))* scores? 0 for every image of the first test batch: .* in the last block (is|are) silent/);
    assert.match(warnings[0], /a partly dead network \(expect a lower accuracy; see --class-block-bias, --warmup-steps, --init he\)$/);
    assert.match(plain[0], /a partly dead network \(expect a lower accuracy; see classBlockBias, warmupSteps, init he\)$/);
  } finally {
    model.dispose();
  }
});

test('NaN weights behind a finite loss: the monitor stops at once, counting them', () => {
  const model = nin({ inputSize: 67, seed: 3 });
  setWeights(model, /block2_conv1\/kernel/, NaN);
  try {
    const monitor = new HealthMonitor(model, 16);
    assert.throws(() => monitor.check({ loss: 2.3026, logitSpread: 0.5, gradAbsSum: 3 }, { epoch: 2, step: 7, steps: 10 }),
      (err: unknown) => {
        assert.ok(err instanceof DivergedError, String(err));
        assert.match(err.message, /^training diverged at epoch 2, step 7 of 10: 65,536 of 1,992,166 weights are NaN or infinite \(first in block2_conv1\/kernel\), whatever the loss \(2\.3026\) says/);
        assert.match(err.messageFor(FLAGS), /smaller learning rate than 16 \(e\.g\. --lr 1\.6\)$/);
        assert.match(err.message, /smaller learning rate than 16 \(e\.g\. lr 1\.6\)$/);
        assert.equal(err.suggestedLr, 1.6);
        return true;
      });
    assert.deepEqual(nonFiniteWeights(model).layers, ['block2_conv1/kernel']);
  } finally {
    model.dispose();
  }
});

test('a NaN gradient is not applied: the weights stay as they were and training stops', () => {
  const model = nin({ inputSize: 67, seed: 3 });
  try {
    const monitor = new HealthMonitor(model, 0.1);
    assert.throws(() => monitor.check({ loss: 2.3, logitSpread: 1, gradAbsSum: NaN }, { epoch: 1, step: 1, steps: 5 }),
      (err: unknown) => err instanceof DivergedError && /gradients hold NaN or infinite values \(the update was not applied\); try a smaller learning rate than 0\.1 \(e\.g\. lr 0\.01\)$/.test(err.message) &&
        /\(e\.g\. --lr 0\.01\)$/.test(err.messageFor(FLAGS)) && err.suggestedLr === 0.01);
  } finally {
    model.dispose();
  }
});

test('a learning rate of 1e20 from scratch stops in the first steps instead of finishing with NaN weights', async () => {
  const model = nin({ inputSize: 67, seed: 3 });
  let steps = 0;
  try {
    await assert.rejects(train(model, data, { numEpochs: 2, batchSize: 8, lr: 1e20, resize: 67, seed: 1 }, { onBatchEnd: () => { steps++; } }),
      (err: unknown) => err instanceof DivergedError || err instanceof DeadNetworkError);
    assert.ok(steps <= 16, `stopped after ${steps} steps`);
  } finally {
    model.dispose();
  }
});

test('saveCheckpoint refuses NaN weights and leaves the good checkpoint in place', async () => {
  const dir = path.join(tmp, 'refuse');
  const model = nin({ inputSize: 67, seed: 3 });
  const contents = {
    history: [{ epoch: 1, trainLoss: 2, trainAcc: 0.2, testAcc: 0.2, examplesPerSec: 1, seconds: 1 }],
    train: resolveTrainConfig({ resize: 67, batchSize: 8 }), model: resolveNinConfig({ inputSize: 67, seed: 3 }),
    data: { trainCount: 64, testCount: 16 },
  };
  try {
    await saveCheckpoint(dir, model, contents);
    setWeights(model, /block1_conv0\/bias/, Infinity);
    await assert.rejects(saveCheckpoint(dir, model, { ...contents, history: [...contents.history, { ...contents.history[0], epoch: 2 }] }),
      (err: unknown) => err instanceof DivergedError && /not saving a checkpoint in .*refuse: 96 of 1,992,166 weights \(first in block1_conv0\/bias\) are NaN or infinite/.test(err.message));
    assert.equal(latestCheckpoint(dir).name, 'epoch-0001');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['epoch-0001', 'latest.json']);
  } finally {
    model.dispose();
  }
});

test('a saved model with NaN weights is refused on loading (nin eval, --resume), naming the folder', async () => {
  const folder = path.join(tmp, 'nan-model');
  const model = nin({ inputSize: 67, seed: 3 });
  try {
    await saveLayersModel(model, folder);
  } finally {
    model.dispose();
  }
  const weightsFile = path.join(folder, 'weights.bin');
  const bytes = fs.readFileSync(weightsFile);
  new Float32Array(bytes.buffer, bytes.byteOffset, 8).fill(NaN);
  fs.writeFileSync(weightsFile, bytes);
  await assert.rejects(loadModelFromDir(folder), (err: unknown) =>
    err instanceof ConfigError && /nan-model holds a model with 8 of 1,992,166 weights NaN or infinite \(first in block1_conv0\/kernel\)/.test(err.message));
});

test('evaluateModel flags a dead model: every image scored the same', () => {
  const dead = deadModel();
  const live = nin({ inputSize: 67, seed: 3 });
  try {
    assert.equal(evaluateModel(dead, data.test).constantOutput, true);
    assert.equal(evaluateModel(live, data.test).constantOutput, false);
  } finally {
    dead.dispose();
    live.dispose();
  }
});
