/**
 * Training health: a dead network and a NaN network built on purpose are each stopped within
 * a few steps with a message saying what happened and where; a live network on its plateau is
 * not; nothing non-finite is ever saved or evaluated.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bandSplit } from '../fixtures';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../../lib/kernels/backend';
import { nin, resolveNinConfig } from '../../lib/core/model';
import { resolveTrainConfig } from '../../lib/core/trainConfig';
import { train } from '../../lib/training/loop';
import {
  DeadNetworkError, DivergedError, HealthMonitor, logitSpread, nonFiniteWeights, resolveHealthConfig,
} from '../../lib/core/health';
import { loadModelFromDir, readCheckpointState, saveCheckpoint } from '../../lib/storage/checkpoint';
import { saveLayersModel } from '../../lib/storage/layersFolder';
import { evaluateModel } from '../../lib/core/evaluate';
import { ConfigError } from '../../lib/core/validate';

before(async () => {
  await selectBackend('wasm');
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-health-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const data = { train: bandSplit(64), test: bandSplit(16, 3) };

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

test('a class whose channel of the last block stays silent is named in a warning after two epochs; training goes on', async () => {
  const model = nin({ inputSize: 67, seed: 3, init: 'he' });
  const bias = model.weights.find((w) => w.originalName === 'block4_conv2/bias')!;
  const values = Array.from(bias.read().dataSync());
  values[3] = -100;
  const t = tf.tensor1d(values);
  bias.write(t);
  t.dispose();
  const warnings: string[] = [];
  try {
    const h = await train(model, data, { numEpochs: 3, batchSize: 8, lr: 1e-7, resize: 67, seed: 1 }, { onWarning: (w) => { warnings.push(w); } });
    assert.equal(h.epochs.length, 3);
    assert.ok(h.epochs.every((e) => e.silentClasses?.includes(3)), 'each epoch records it');
    assert.equal(warnings.length, 1, 'once, when first silent at two epoch ends in a row (not again after epoch 3)');
    assert.match(warnings[0], /^after epochs 1 and 2, classes? (\d \([^)]+\), )*3 \(dress\)(, \d \([^)]+\))* scores? 0 for every image of the first test batch: .* in the last block (is|are) silent/);
    assert.match(warnings[0], /a partly dead network \(expect a lower accuracy; see --class-block-bias, --warmup-steps, --init he\)$/);
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
        assert.match(err.message, /smaller learning rate than 16 \(e\.g\. --lr 1\.6\)/);
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
      (err: unknown) => err instanceof DivergedError && /gradients hold NaN or infinite values \(the update was not applied\)/.test(err.message));
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
    assert.equal(readCheckpointState(dir).name, 'epoch-0001');
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
