/**
 * The time budget: a run that fits is left alone; one that does not trains on fewer images
 * per epoch, and only below a floor on fewer epochs; the note says what was cut and why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveTrainConfig } from '../../lib/core/trainConfig';
import { sliceSplit } from '../../lib/core/fashionMnist';
import { describeEstimate, estimateTraining, fitToBudget, TrainingEstimate } from '../../lib/training/estimate';
import { ConfigError } from '../../lib/core/validate';
import { bandSplit } from '../fixtures';

/** 6 epochs of 60,000 training and 10,000 test images at the given rates. */
const estimate = (trainRate: number, forwardRate: number): TrainingEstimate => ({
  seconds: 6 * (60000 / trainRate + 10000 / forwardRate), trainImagesPerSec: trainRate, forwardImagesPerSec: forwardRate,
  epochs: 6, trainCount: 60000, testCount: 10000,
});

test('a run within the budget (and its slack) is unchanged, with no note', () => {
  assert.deepEqual(fitToBudget(estimate(365, 1400), { seconds: 1200 }), { trainCount: 60000, epochs: 6 }); // about 1,030 s
  assert.deepEqual(fitToBudget(estimate(300, 1400), { seconds: 1200 }), { trainCount: 60000, epochs: 6 }); // 1,243 s: within 15%
  assert.deepEqual(fitToBudget(estimate(10, 10), { seconds: undefined }), { trainCount: 60000, epochs: 6 });
});

test('a slower machine keeps the epochs and trains on fewer images, which then fit the budget', () => {
  const e = estimate(60, 250); // wasm only: about 107 minutes
  const fit = fitToBudget(e, { seconds: 1200, whose: "the cpu profile's" });
  assert.equal(fit.epochs, 6);
  assert.equal(fit.trainCount % 1000, 0);
  const seconds = fit.epochs * (fit.trainCount / 60 + 10000 / 250);
  assert.ok(seconds <= 1200 && seconds > 1100, `the fitted run takes ${seconds} s`);
  assert.equal(fit.note, "shrunk to fit the cpu profile's budget of 20 minutes: the whole run would take about 104 minutes " +
    'on this machine (60 training images/s), so it uses the first 9,000 training images per epoch instead of 60,000; ' +
    'the recipe and image size are unchanged, but fewer images seen means a lower accuracy');
});

test('below the floor of training images, epochs are cut instead', () => {
  const fit = fitToBudget(estimate(5, 100), { seconds: 1200 });
  assert.equal(fit.trainCount, 5000);
  assert.equal(fit.epochs, 1);
  assert.match(fit.note!, /the first 5,000 training images per epoch instead of 60,000 and 1 epoch instead of 6/);
});

test('budget options are checked', () => {
  assert.throws(() => fitToBudget(estimate(60, 250), { seconds: -1 }), ConfigError);
  assert.throws(() => fitToBudget(estimate(60, 250), { seconds: 60, roundTo: 0 }), /roundTo must be an integer >= 1/);
  assert.throws(() => fitToBudget(estimate(60, 250), { seconds: 60, colour: 'red' } as never), ConfigError);
});

test('sliceSplit: a window of a split without copying, clamped to what it holds', () => {
  const split = bandSplit(10);
  const s = sliceSplit(split, 2, 3);
  assert.equal(s.count, 3);
  assert.deepEqual(Array.from(s.labels), Array.from(split.labels.subarray(2, 5)));
  assert.equal(s.images.buffer, split.images.buffer);
  assert.equal(s.images.length, 3 * 28 * 28);
  assert.equal(sliceSplit(split, 8, 5).count, 2);
  assert.equal(sliceSplit(split, 20, 5).count, 0);
  assert.throws(() => sliceSplit(split, -1, 5), /first must be an integer >= 0, got -1/);
  assert.throws(() => sliceSplit(split, 0, 2.5), /count must be an integer >= 0/);
});

test('estimateTraining: epochs × (training images / training rate + test images / inference rate), in words', () => {
  const measured = { backend: 'wasm', resize: 67, batch_size: 64, forward_img_s: 1000, train_img_s: 250, peak_rss_mb: 1,
    gflops: 0, forward_gflops: 0, peak_gflops: null, conv_library: 'OpenBLAS' };
  const asked: unknown[] = [];
  const rules: unknown[] = [];
  const config = resolveTrainConfig({ numEpochs: 6, resize: 67, batchSize: 64, optimizer: 'adam', lr: 0.001 });
  const e = estimateTraining(config, 60000, 10000, (c, rule) => { asked.push(c); rules.push(rule.optimizer); return measured; });
  assert.deepEqual(asked, [{ resize: 67, batchSize: 64, steps: 3, warmup: 3 }], 'measured at the run\'s size and batch, after three untimed steps');
  assert.deepEqual(rules, ['adam'], 'the steps timed are the recipe\'s (Adam\'s update costs more than SGD\'s)');
  assert.equal(e.seconds, 6 * (60000 / 250 + 10000 / 1000));
  assert.equal(describeEstimate(e), 'measured here: 250 training and 1,000 inference images/s, so 6 epochs of 60,000 training ' +
    'images (and 10,000 test images after each) take about 25 minutes on this machine');
  assert.match(describeEstimate({ ...e, seconds: 12 }), /take about 12 seconds on this machine$/);
});
