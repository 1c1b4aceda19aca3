/**
 * Starting the class block alive: after liftClassBlock no class channel is below the margin on
 * the batch it looked at, only class-block biases change (and only where needed), and train()
 * lifts a fresh run but not a resumed one.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { bandSplit } from '../fixtures';
import { selectBackend } from '../../lib/kernels/backend';
import { liftClassBlock } from '../../lib/core/classBlockLift';
import { batches } from '../../lib/core/fashionMnist';
import { nin } from '../../lib/core/model';
import { train } from '../trainModel';
import { resolveTrainConfig } from '../../lib/core/trainConfig';

before(async () => {
  await selectBackend('wasm');
});

const split = bandSplit(64);

/** Per class, the smallest score over the split's images. */
function minScores(model: ReturnType<typeof nin>): number[] {
  const { value } = batches(split, { batchSize: split.count, resize: 67, shuffle: false, seed: 0, epoch: 0 }).next();
  const min = tf.tidy(() => tf.min(model.predict(value.xs) as tf.Tensor, 0));
  const out = Array.from(min.dataSync());
  tf.dispose([min, value.xs, value.ys]);
  return out;
}

test('liftClassBlock: every class scores at least the margin on the batch; only class-block biases move', () => {
  for (const seed of [1, 2, 9]) {
    const model = nin({ inputSize: 67, seed });
    const before = model.getWeights().map((w, i) => ({ name: model.weights[i].originalName, values: Array.from(w.dataSync()) }));
    const dead = minScores(model).filter((m) => m === 0).length;
    const tensors = tf.memory().numTensors;
    const lifted = liftClassBlock(model, split, { resize: 67, margin: 0.1 });
    assert.equal(tf.memory().numTensors, tensors, 'no tensor left behind');
    assert.ok(lifted >= dead, `seed ${seed}: lifted ${lifted} channels, ${dead} classes were dead`);
    assert.ok(minScores(model).every((m) => m >= 0.1 - 1e-5), `seed ${seed}: every class at least 0.1`);
    model.getWeights().forEach((w, i) => {
      const { name, values } = before[i];
      const now = w.dataSync();
      if (!/^block4_conv\d+\/bias$/.test(name)) assert.ok(values.every((v, j) => v === now[j]), `${name} unchanged`);
      else assert.ok(values.every((v, j) => now[j] >= v), `${name} only raised`);
    });
    model.dispose();
  }
});

test('liftClassBlock leaves a class block that is already clear of the margin as it is', () => {
  const model = nin({ inputSize: 67, seed: 3 });
  assert.equal(liftClassBlock(model, split, { resize: 67, margin: 0 }), 0, 'margin 0: off');
  assert.ok(liftClassBlock(model, split, { resize: 67, margin: 0.1 }) > 0);
  assert.equal(liftClassBlock(model, split, { resize: 67, margin: 0.1 }), 0, 'a second lift finds nothing to do');
  model.dispose();
});

test('train lifts the class block of a fresh run when classBlockMargin > 0', async () => {
  const data = { train: split, test: bandSplit(16, 64) };
  const config = { numEpochs: 1, batchSize: 64, lr: 1e-9, resize: 67, seed: 1, optimizer: 'sgd' as const, classBlockMargin: 0.1 };
  const model = nin({ inputSize: 67, seed: 1 });
  await train(model, data, config);
  assert.ok(minScores(model).every((m) => m >= 0.1 - 1e-3), 'lifted before the first (tiny) step');
  model.dispose();
  assert.equal(resolveTrainConfig().classBlockMargin, 0, "off by default: the chapter's");
  assert.throws(() => resolveTrainConfig({ classBlockMargin: -1 }), /classBlockMargin must be a number from 0 to 10, got -1/);
});
