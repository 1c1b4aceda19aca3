/**
 * lib/training/timeToAccuracy.ts: where it evaluates, when it stops, what it counts, and that
 * a profile's budget does not cut the recipe it measures.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { bandSplit } from '../fixtures';
import { selectBackend } from '../../lib/kernels/backend';
import { ConfigError } from '../../lib/core/validate';
import type { RunOptions } from '../../lib/training/run';
import { resolveTimeToAccuracyConfig, timeToAccuracy } from '../../lib/training/timeToAccuracy';

before(async () => {
  await selectBackend('wasm');
});

const data = { train: bandSplit(40), test: bandSplit(20, 3) };
const recipe: RunOptions = {
  train: { numEpochs: 2, batchSize: 8, resize: 67, seed: 1, optimizer: 'adam', lr: 0.001 }, model: { init: 'he' },
};

test('the config: defaults, and each bad field refused by name', () => {
  assert.deepEqual(resolveTimeToAccuracyConfig(), { target: 0.9, evalsPerEpoch: 2 });
  for (const [bad, field] of [[{ target: 0 }, 'target'], [{ target: 1.2 }, 'target'], [{ target: Number.NaN }, 'target'],
    [{ evalsPerEpoch: 0 }, 'evalsPerEpoch'], [{ evalsPerEpoch: 1.5 }, 'evalsPerEpoch'], [{ evalsPerEpoch: 1, extra: 1 }, 'extra']] as const) {
    assert.throws(() => resolveTimeToAccuracyConfig(bad as never), (e: unknown) => e instanceof ConfigError && e.message.includes(field), JSON.stringify(bad));
  }
});

test('an unreachable target: every evaluation point of every epoch, images counted, the model freed', async () => {
  const tensorsBefore = tf.memory().numTensors;
  const r = await timeToAccuracy(recipe, data, { target: 1, evalsPerEpoch: 3 });
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor left behind');
  assert.equal(r.reached, false);
  // 40 images in batches of 8: 5 steps; a third of an epoch is round(5/3) = 2 steps, two thirds round(10/3) = 3.
  assert.deepEqual(r.curve.map((p) => p.epochs), [0.4, 0.6, 1, 1.4, 1.6, 2]);
  assert.deepEqual(r.curve.map((p) => p.images), [16, 24, 40, 56, 64, 80]);
  assert.deepEqual(r.curve.filter((p) => p.epochs % 1 === 0).map((p) => p.testAcc), r.history.epochs.map((e) => e.testAcc),
    'the epoch ends are the loop\'s own evaluations');
  assert.ok(r.curve.every((p, i) => i === 0 || p.seconds >= r.curve[i - 1].seconds), 'time runs forward');
  assert.ok(r.evalSeconds > 0 && r.evalSeconds < r.seconds);
  assert.equal(r.epochs, 2);
  assert.equal(r.images, 80);
  assert.equal(r.recipe.train.batchSize, 8);
  assert.equal(r.history.interrupted, undefined, 'ran to its end');
});

test('a reached target stops the run at that evaluation', async () => {
  const r = await timeToAccuracy(recipe, data, { target: 0.01, evalsPerEpoch: 2 });
  assert.equal(r.reached, true);
  assert.equal(r.curve.length, 1, 'stopped at the first evaluation');
  assert.equal(r.epochs, 0.6); // round(5 / 2) = 3 of 5 steps
  assert.equal(r.images, 24);
  assert.equal(r.seconds, r.curve[0].seconds);
  assert.deepEqual(r.history.epochs, [], 'no epoch finished');
  assert.equal(r.history.interrupted?.steps, 3);
});

test('a profile\'s time budget does not cut the recipe measured, and its limits hold', async () => {
  const profile = { train: recipe.train!, model: recipe.model!, trainLimit: 24, testLimit: 10, budgetSeconds: 0.001 };
  const r = await timeToAccuracy({ profile }, data, { target: 1, evalsPerEpoch: 1 });
  assert.deepEqual(r.curve.map((p) => p.images), [24, 48], 'all 24 training images of each of the 2 epochs');
  assert.equal(r.recipe.trainLimit, 24);
  assert.ok(r.curve.every((p) => Number.isInteger(p.testAcc * 10)), 'accuracy over the 10 test images');
});

test('a stop from outside ends the run where it is, unreached', async () => {
  const stop = new AbortController();
  const r = await timeToAccuracy(recipe, data, { target: 1, evalsPerEpoch: 5 }, {
    signal: stop.signal,
    onEvaluation: () => stop.abort(),
  });
  assert.equal(r.reached, false);
  assert.equal(r.curve.length, 1);
  assert.equal(r.history.interrupted?.steps, 1);
});
