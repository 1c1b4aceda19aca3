/**
 * The trainer on synthetic Fashion-MNIST-shaped data: option errors, a few real SGD steps
 * on the wasm backend, callbacks, divergence, evaluation, and a tensor count that stays flat.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bandSplit } from '../fixtures';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../../lib/kernels/backend';
import { nin } from '../../lib/core/model';
import { autoMicroBatchSize, crossEntropy, sgdStep } from '../../lib/training/loop';
import type { BatchInfo, EpochResult, TrainHistory } from '../../lib/core/history';
import { train } from '../trainModel';
import { disposeOptimizer, learningRateAt, makeOptimizer } from '../../lib/core/optimizers';
import { LrSchedule, OptimizerName, resolveTrainConfig, TRAIN_DEFAULTS, TrainConfig } from '../../lib/core/trainConfig';
import { evaluateAccuracy, predict } from '../../lib/core/evaluate';
import { ConfigError } from '../../lib/core/validate';
import { DivergedError } from '../../lib/core/health';

before(async () => {
  await selectBackend('wasm');
});


const data = { train: bandSplit(64), test: bandSplit(32, 3) };

function assertConfigError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Options

test("resolveTrainConfig: the chapter's defaults", () => {
  assert.deepEqual(resolveTrainConfig(),
    { numEpochs: 5, optimizer: 'sgd', lr: 0.1, lrSchedule: 'constant', warmupSteps: 0, momentum: 0, classBlockMargin: 0, labelSmoothing: 0, batchSize: 128, resize: 224, seed: 0, microBatchSize: undefined });
  assert.deepEqual(TRAIN_DEFAULTS, resolveTrainConfig());
  assert.deepEqual(resolveTrainConfig({ lr: 0.05, resize: 67, numEpochs: undefined }),
    { numEpochs: 5, optimizer: 'sgd', lr: 0.05, lrSchedule: 'constant', warmupSteps: 0, momentum: 0, classBlockMargin: 0, labelSmoothing: 0, batchSize: 128, resize: 67, seed: 0, microBatchSize: undefined },
    'undefined keeps the default');
});

test('resolveTrainConfig rejects bad options, naming them', () => {
  assertConfigError(() => resolveTrainConfig({ lr: 0 }), /lr must be a positive finite number, got 0/);
  assertConfigError(() => resolveTrainConfig({ lr: -1 }), /lr must be a positive finite number, got -1/);
  assertConfigError(() => resolveTrainConfig({ lr: NaN }), /lr must be a positive finite number, got NaN/);
  assertConfigError(() => resolveTrainConfig({ lr: Infinity }), /lr must be a positive finite number, got Infinity/);
  assertConfigError(() => resolveTrainConfig({ batchSize: 0 }), /batchSize must be an integer >= 1, got 0/);
  assertConfigError(() => resolveTrainConfig({ batchSize: 2.5 }), /batchSize .* got 2\.5/);
  assertConfigError(() => resolveTrainConfig({ numEpochs: 0 }), /numEpochs must be an integer >= 1, got 0/);
  assertConfigError(() => resolveTrainConfig({ resize: 66 }), /resize must be an integer of at least 67 px.*got 66/);
  assertConfigError(() => resolveTrainConfig({ seed: -1 }), /seed must be an integer >= 0, got -1/);
  assertConfigError(() => resolveTrainConfig({ labelSmoothing: 1 }), /labelSmoothing must be a number in \[0, 1\), got 1/);
  assertConfigError(() => resolveTrainConfig({ labelSmoothing: -0.1 }), /labelSmoothing must be a number in \[0, 1\), got -0.1/);
  assertConfigError(() => resolveTrainConfig({ learningRate: 0.1 } as never), /unknown training option "learningRate"; known: .*lr/);
});

// ---------------------------------------------------------------------------------------------
// Training

describe('train() on wasm at 67 px', () => {
  // A shallow NiN (no 1×1 convolutions, no dropout): the chapter's full network sits on the
  // ln(10) plateau for its first dozens of steps, and dropout (unseeded) would make the
  // numbers vary from run to run. With a seed and no dropout the run is deterministic.
  let model: tfl.Sequential;
  let history: TrainHistory;
  const batchCalls: BatchInfo[] = [];
  const epochCalls: { result: EpochResult; length: number }[] = [];
  const numEpochs = 3;
  const batchSize = 16;

  before(async () => {
    model = nin({ inputSize: 67, oneByOneCount: 0, dropout: 0, seed: 1 });
    history = await train(model, data, { numEpochs, batchSize, lr: 0.15, resize: 67, seed: 1 }, {
      onBatchEnd: (info) => { batchCalls.push(info); },
      onEpochEnd: async (result, h) => { epochCalls.push({ result, length: h.epochs.length }); },
    });
  });
  after(() => model?.dispose());

  test('history: one finite EpochResult per epoch', () => {
    assert.equal(history.config.numEpochs, numEpochs);
    assert.equal(history.config.lr, 0.15);
    assert.equal(history.epochs.length, numEpochs);
    history.epochs.forEach((e, i) => {
      assert.equal(e.epoch, i + 1);
      for (const key of ['trainLoss', 'trainAcc', 'testAcc', 'examplesPerSec', 'seconds'] as const) {
        assert.ok(Number.isFinite(e[key]), `epoch ${e.epoch} ${key} = ${e[key]}`);
      }
      for (const key of ['trainAcc', 'testAcc'] as const) {
        assert.ok(e[key] >= 0 && e[key] <= 1, `epoch ${e.epoch} ${key} = ${e[key]}`);
      }
      assert.ok(e.trainLoss > 0);
      assert.ok(e.examplesPerSec > 0);
      assert.ok(e.seconds > 0);
      // Accuracies are counts of whole examples over the split.
      const whole = (x: number) => Math.abs(x - Math.round(x)) < 1e-9;
      assert.ok(whole(e.trainAcc * 64), `trainAcc ${e.trainAcc} is k/64`);
      assert.ok(whole(e.testAcc * 32), `testAcc ${e.testAcc} is k/32`);
    });
  });

  test('the loss goes down', () => {
    const first = history.epochs[0];
    const last = history.epochs[numEpochs - 1];
    assert.ok(last.trainLoss < first.trainLoss - 0.02,
      `loss ${first.trainLoss} in epoch 1, ${last.trainLoss} in epoch ${numEpochs}`);
    assert.ok(last.trainAcc > first.trainAcc, `train acc ${first.trainAcc} → ${last.trainAcc}`);
  });

  test('onBatchEnd after every step, onEpochEnd after every epoch', () => {
    const steps = Math.ceil(64 / batchSize);
    assert.equal(batchCalls.length, numEpochs * steps);
    batchCalls.forEach((info, i) => {
      assert.equal(info.epoch, Math.floor(i / steps) + 1);
      assert.equal(info.batch, i % steps, 'batch index counts up from 0 within each epoch');
      assert.equal(info.numBatches, steps);
      assert.ok(Number.isFinite(info.loss) && info.loss > 0);
      assert.ok(info.acc >= 0 && info.acc <= 1);
    });
    assert.deepEqual(epochCalls.map((c) => c.result.epoch), [1, 2, 3]);
    assert.deepEqual(epochCalls.map((c) => c.length), [1, 2, 3], 'the history passed along grows by one each epoch');
    assert.deepEqual(epochCalls.map((c) => c.result), history.epochs);
    // The epoch loss is the example-weighted mean of its batch losses.
    const epoch1 = batchCalls.filter((b) => b.epoch === 1);
    const mean = epoch1.reduce((s, b) => s + b.loss, 0) / epoch1.length; // equal batches of 16
    assert.ok(Math.abs(mean - history.epochs[0].trainLoss) < 1e-5, `${mean} vs ${history.epochs[0].trainLoss}`);
  });

  test('evaluateAccuracy is the fraction of predict() that is right', () => {
    const start = tf.memory().numTensors;
    const predicted = predict(model, data.test, 67);
    assert.equal(predicted.length, data.test.count);
    assert.ok(predicted.every((c) => Number.isInteger(c) && c >= 0 && c < 10));
    const right = predicted.filter((c, i) => c === data.test.labels[i]).length;
    for (const batch of [32, 5]) { // 5 leaves a partial last batch
      const acc = evaluateAccuracy(model, data.test, { batchSize: batch, resize: 67 });
      assert.ok(acc >= 0 && acc <= 1);
      assert.equal(acc, right / data.test.count, `batch ${batch}`);
    }
    assert.equal(evaluateAccuracy(model, data.test, { batchSize: 16, resize: 67 }), history.epochs[numEpochs - 1].testAcc,
      'the last epoch reported the same test accuracy');
    assert.deepEqual(predict(model, data.test, 67, 10), predicted.slice(0, 10));
    assert.equal(tf.memory().numTensors, start);
  });
});

test("tensor count stays flat over the chapter's network, and returns to the start", async () => {
  const before = tf.memory().numTensors;
  const model = nin({ inputSize: 67, init: 'he', seed: 2 }); // the chapter's network, with dropout
  const counts: number[] = [];
  const history = await train(model, { train: bandSplit(32), test: bandSplit(16, 3) },
    { numEpochs: 3, batchSize: 16, lr: 0.05, resize: 67, seed: 2 },
    { onEpochEnd: () => { counts.push(tf.memory().numTensors); } });
  assert.equal(history.epochs.length, 3);
  assert.equal(counts.length, 3);
  assert.ok(counts[0] > before, 'the model holds its weights');
  assert.equal(counts[2], counts[0], `tensors after each epoch: ${counts.join(', ')}`);
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('a model built for another size is rejected, naming both sizes', async () => {
  const model = nin({ inputSize: 96 });
  try {
    await assert.rejects(train(model, data, { resize: 67, numEpochs: 1 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /96/);
      assert.match(err.message, /67/);
      assert.match(err.message, /inputSize: 67/, 'says how to build the right model');
      return true;
    });
  } finally {
    model.dispose();
  }
});

test('a learning rate far too large diverges with a DivergedError saying where and what to try', async () => {
  const before = tf.memory().numTensors;
  // Deterministic: seeded weights and order, no dropout. lr 1e6 makes the loss NaN in epoch 1.
  const model = nin({ inputSize: 67, dropout: 0, seed: 1 });
  const seen: BatchInfo[] = [];
  try {
    await assert.rejects(
      train(model, data, { numEpochs: 2, batchSize: 16, lr: 1e6, resize: 67, seed: 1 }, { onBatchEnd: (b) => { seen.push(b); } }),
      (err: unknown) => {
        assert.ok(err instanceof DivergedError, `expected a DivergedError, got ${String(err)}`);
        assert.equal(err.name, 'DivergedError');
        assert.match(err.message, /^training diverged at epoch 1, step \d of 4: the loss is (NaN|-?Infinity); /);
        assert.match(err.message, /smaller learning rate than 1000000/);
        assert.match(err.message, /\(e\.g\. lr 100000\)/, 'the library names the field');
        assert.match(err.messageFor({ lr: '--lr' }), /--lr 100000\b/, 'the command line, its flag');
        assert.equal(err.suggestedLr, 100000, 'and the suggestion as data');
        const step = Number(/step (\d)/.exec(err.message)![1]);
        assert.equal(seen.length, step - 1, 'callbacks ran for the steps before the bad one only');
        return true;
      },
    );
    assert.ok(seen.every((b) => Number.isFinite(b.loss)));
  } finally {
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'nothing leaks when training stops early');
});

// ---------------------------------------------------------------------------------------------
// The loss

test('crossEntropy: ln(10) for uniform logits, and a hand-computed case', () => {
  const start = tf.memory().numTensors;
  const uniform = tf.zeros([4, 10]) as tf.Tensor2D;
  const ys = tf.tensor1d([0, 3, 9, 5], 'int32');
  const loss = crossEntropy(uniform, ys);
  assert.deepEqual(loss.shape, []);
  assert.ok(Math.abs(loss.dataSync()[0] - Math.log(10)) < 1e-6, `${loss.dataSync()[0]} vs ln 10`);

  // Logits (1, 2, 3) with label 2: -log(e³ / (e + e² + e³)) = log(1 + e⁻¹ + e⁻²).
  // Logits (0, 0, 0) with label 0: log 3. The mean of the two.
  const logits = tf.tensor2d([[1, 2, 3], [0, 0, 0]]);
  const labels = tf.tensor1d([2, 0], 'int32');
  const mixed = crossEntropy(logits, labels);
  const expected = (Math.log(1 + Math.exp(-1) + Math.exp(-2)) + Math.log(3)) / 2;
  assert.ok(Math.abs(mixed.dataSync()[0] - expected) < 1e-6, `${mixed.dataSync()[0]} vs ${expected}`);

  tf.dispose([uniform, ys, loss, logits, labels, mixed]);
  assert.equal(tf.memory().numTensors, start);
});

test('crossEntropy with label smoothing: the targets become 1 − ε + ε/K and ε/K', () => {
  const start = tf.memory().numTensors;
  // Logits (1, 2, 3), label 2, ε = 0.3, K = 3: targets (0.1, 0.1, 0.8) against log-softmax.
  const logits = tf.tensor2d([[1, 2, 3]]);
  const labels = tf.tensor1d([2], 'int32');
  const logZ = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
  const expected = -(0.1 * (1 - logZ) + 0.1 * (2 - logZ) + 0.8 * (3 - logZ));
  const smoothed = crossEntropy(logits, labels, 0.3);
  assert.ok(Math.abs(smoothed.dataSync()[0] - expected) < 1e-6, `${smoothed.dataSync()[0]} vs ${expected}`);
  const plain = crossEntropy(logits, labels, 0);
  assert.ok(Math.abs(plain.dataSync()[0] - (logZ - 3)) < 1e-6, 'ε = 0 is the plain loss');
  tf.dispose([logits, labels, smoothed, plain]);
  assert.equal(tf.memory().numTensors, start);
});

describe('sgdStep with micro-batches', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  /** Weights after one step of a fresh seeded model (no dropout, so both runs see the same net). */
  function weightsAfterStep(microBatchSize: number): { weights: Float32Array[]; loss: number; correct: number } {
    const model = nin({ inputSize: 67, init: 'he', seed: 4, dropout: 0 });
    const optimizer = tf.train.sgd(0.1);
    const { xs, ys } = tf.tidy(() => ({
      xs: tf.image.resizeBilinear(tf.tensor4d(Float32Array.from(data.train.images.subarray(0, 12 * 784), (v) => v / 255),
        [12, 28, 28, 1]), [67, 67]) as tf.Tensor4D,
      ys: tf.tensor1d(Int32Array.from(data.train.labels.subarray(0, 12)), 'int32'),
    }));
    try {
      const r = sgdStep(model, optimizer, xs, ys, microBatchSize);
      return { ...r, weights: model.getWeights().map((w) => w.dataSync() as Float32Array) };
    } finally {
      tf.dispose([xs, ys]);
      optimizer.dispose();
      model.dispose();
    }
  }

  test('splitting a batch into pieces gives the same update, loss and count as the whole batch', () => {
    const whole = weightsAfterStep(12);
    for (const micro of [5, 4, 1]) {
      const split = weightsAfterStep(micro);
      assert.ok(Math.abs(split.loss - whole.loss) < 1e-5, `micro ${micro}: loss ${split.loss} vs ${whole.loss}`);
      assert.equal(split.correct, whole.correct);
      whole.weights.forEach((w, i) => {
        const worst = w.reduce((m, v, j) => Math.max(m, Math.abs(v - split.weights[i][j])), 0);
        assert.ok(worst < 1e-5, `micro ${micro}: weight ${i} differs by ${worst}`);
      });
    }
  });

  test('no tensors are left behind by a split step', () => {
    weightsAfterStep(5);
    const before = tf.memory().numTensors;
    weightsAfterStep(5);
    assert.equal(tf.memory().numTensors, before);
  });

  test('autoMicroBatchSize splits nothing off wasm', async () => {
    await selectBackend('cpu');
    const large = nin({ inputSize: 224 });
    try {
      assert.equal(autoMicroBatchSize(large, 128), 128);
    } finally {
      large.dispose();
      await selectBackend('wasm');
    }
  });

  test('autoMicroBatchSize: whole batch at 96 px, even pieces under the wasm budget at 224 px', () => {
    const small = nin({ inputSize: 96 });
    const large = nin({ inputSize: 224 });
    try {
      assert.equal(autoMicroBatchSize(small, 128), 128);
      const m = autoMicroBatchSize(large, 128);
      assert.ok(m < 128 && m >= 16, `224 px on wasm: ${m}`);
      const pieces = Math.ceil(128 / m);
      assert.equal(m, Math.ceil(128 / pieces), 'pieces are as even as possible');
    } finally {
      small.dispose();
      large.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Determinism, stopping and resuming

/** An epoch's result without its timing fields, which no two runs share. */
const untimed = ({ examplesPerSec: _s, seconds: _t, ...rest }: EpochResult) => rest;

/** Every weight of `model`, copied out, in order. */
function weightsOf(model: tfl.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
}

describe('deterministic training with dropout', () => {
  const tiny = { train: bandSplit(32), test: bandSplit(16, 3) };

  /** A fresh run of the chapter's network (dropout 0.5) for two epochs. */
  async function run(seed: number, runOptions: Parameters<typeof train>[4] = {}, numEpochs = 2, model = nin({ inputSize: 67, init: 'he', seed })) {
    try {
      const history = await train(model, tiny, { numEpochs, batchSize: 8, lr: 0.1, resize: 67, seed }, {}, runOptions);
      return { history, weights: weightsOf(model) };
    } finally {
      model.dispose();
    }
  }

  test('the same seed gives bitwise-identical histories and weights; another seed does not', async () => {
    const a = await run(3);
    const b = await run(3);
    const c = await run(4);
    assert.equal(a.history.epochs.length, 2);
    assert.deepEqual(b.history.epochs.map(untimed), a.history.epochs.map(untimed), 'losses and accuracies bit for bit');
    b.weights.forEach((w, i) => assert.deepEqual(w, a.weights[i], `weight ${i}`));
    assert.notDeepEqual(c.history.epochs.map(untimed), a.history.epochs.map(untimed));
    assert.ok(c.weights.some((w, i) => !w.every((v, j) => Object.is(v, a.weights[i][j]))), 'seed 4 trains other weights');
  });

  test('sgdStep: the same (seed, epoch, step) drops the same units, another step others; the layer keeps no seed', () => {
    const xs = tf.tidy(() => tf.image.resizeBilinear(tf.tensor4d(Float32Array.from(tiny.train.images.subarray(0, 4 * 784), (v) => v / 255),
      [4, 28, 28, 1]), [67, 67]) as tf.Tensor4D);
    const ys = tf.tensor1d(Int32Array.from(tiny.train.labels.subarray(0, 4)), 'int32');
    const stepOnce = (step: number | undefined, micro = 4) => {
      const model = nin({ inputSize: 67, init: 'he', seed: 5 });
      const optimizer = tf.train.sgd(0.1);
      try {
        const r = sgdStep(model, optimizer, xs, ys, micro, step === undefined ? undefined : { seed: 5, epoch: 1, step });
        const dropout = model.layers.find((l) => l.name === 'dropout') as unknown as { seed?: number };
        assert.equal(dropout.seed, undefined, 'the seed is cleared after the step');
        return { loss: r.loss, weights: weightsOf(model) };
      } finally {
        optimizer.dispose();
        model.dispose();
      }
    };
    try {
      const first = stepOnce(0);
      assert.deepEqual(stepOnce(0), first, 'same step, same masks, same update');
      const next = stepOnce(1);
      assert.notEqual(next.loss, first.loss, 'another step draws other masks');
      const split = stepOnce(0, 2);
      assert.deepEqual(stepOnce(0, 2), split, 'micro-batched steps are reproducible too');
    } finally {
      tf.dispose([xs, ys]);
    }
  });

  test('a run stopped by its signal mid-epoch and resumed equals one never stopped', async () => {
    const whole = await run(6);
    const controller = new AbortController();
    const model = nin({ inputSize: 67, init: 'he', seed: 6 });
    let steps = 0;
    const history = await train(model, tiny, { numEpochs: 2, batchSize: 8, lr: 0.1, resize: 67, seed: 6 }, {
      onBatchEnd: () => { if (++steps === 6) controller.abort(); }, // epoch 2, step 2 of 4
    }, { signal: controller.signal });
    const stop = history.interrupted!;
    assert.deepEqual([stop.epoch, stop.steps, stop.seen], [2, 2, 16], 'stopped after epoch 2, step 2 (16 examples)');
    assert.ok(stop.lossSum > 0 && stop.trainSeconds > 0 && stop.correct >= 0 && stop.correct <= 16);
    assert.equal(history.epochs.length, 1);
    const resumed = await run(6, { resume: { epochs: history.epochs, partial: history.interrupted } }, 2, model);
    assert.equal(resumed.history.interrupted, undefined);
    assert.deepEqual(resumed.history.epochs.map(untimed), whole.history.epochs.map(untimed));
    resumed.weights.forEach((w, i) => assert.deepEqual(w, whole.weights[i], `weight ${i}`));
  });

  test('a stop inside a step of several pieces drops that step: the run ends where the last whole step left it, leaking nothing', async () => {
    const config = { numEpochs: 1, batchSize: 16, microBatchSize: 4, lr: 0.1, resize: 67, seed: 4 };
    const stopAfterStep1 = async (signalOf: () => { signal: AbortSignal; onBatchEnd: () => void }) => {
      const model = nin({ inputSize: 67, init: 'he', seed: 4 });
      const { signal, onBatchEnd } = signalOf();
      try {
        const history = await train(model, tiny, config, { onBatchEnd }, { signal });
        return { stop: history.interrupted, weights: weightsOf(model) };
      } finally {
        model.dispose();
      }
    };
    // Stopped between two steps, after step 1, the usual way.
    const between = await stopAfterStep1(() => {
      const controller = new AbortController();
      return { signal: controller.signal, onBatchEnd: () => controller.abort() };
    });
    // Stopped inside step 2, between its first and second piece of four.
    const before = tf.memory().numTensors;
    const inside = await stopAfterStep1(() => {
      let reads = -1; // after step 1 ends: the loop's own check (read 0), then step 2's first piece (read 1)
      const signal = { get aborted() { return reads >= 0 && ++reads >= 2; } } as unknown as AbortSignal;
      return { signal, onBatchEnd: () => { if (reads < 0) reads = 0; } };
    });
    assert.equal(tf.memory().numTensors, before, 'the dropped step left no gradient behind');
    assert.deepEqual([inside.stop?.epoch, inside.stop?.steps, inside.stop?.seen], [1, 1, 16], 'one whole step done');
    assert.deepEqual(inside.stop, { ...between.stop!, trainSeconds: inside.stop!.trainSeconds });
    inside.weights.forEach((w, i) => assert.deepEqual(w, between.weights[i], `weight ${i}: step 2 was not applied`));
  });

  test('an abort before an epoch starts stops with zero steps of it', async () => {
    const controller = new AbortController();
    const model = nin({ inputSize: 67, oneByOneCount: 0, seed: 1 });
    try {
      const history = await train(model, tiny, { numEpochs: 3, batchSize: 8, resize: 67 }, {
        onEpochEnd: () => { controller.abort(); },
      }, { signal: controller.signal });
      assert.equal(history.epochs.length, 1);
      assert.deepEqual(history.interrupted, { epoch: 2, steps: 0, lossSum: 0, correct: 0, seen: 0, trainSeconds: 0 });
    } finally {
      model.dispose();
    }
  });

  test('a resume point that does not fit the run is a ConfigError', async () => {
    const model = nin({ inputSize: 67, oneByOneCount: 0, seed: 1 });
    const e1: EpochResult = { epoch: 1, trainLoss: 1, trainAcc: 0, testAcc: 0, examplesPerSec: 1, seconds: 1 };
    const cfg = { numEpochs: 2, batchSize: 8, resize: 67 };
    const partial = { epoch: 2, steps: 4, lossSum: 0, correct: 0, seen: 0, trainSeconds: 0 };
    try {
      await assert.rejects(train(model, tiny, cfg, {}, { resume: { epochs: [{ ...e1, epoch: 2 }] } }), /epoch results must be 1\.\.1/);
      await assert.rejects(train(model, tiny, cfg, {}, { resume: { epochs: [e1, { ...e1, epoch: 2 }, { ...e1, epoch: 3 }] } }),
        /3 epochs are already done but numEpochs is 2/);
      await assert.rejects(train(model, tiny, cfg, {}, { resume: { epochs: [e1], partial } }), /0\.\.3 steps done, got epoch 2 with 4/);
    } finally {
      model.dispose();
    }
  });
});

/** Two epochs on `data` of a small NiN (no 1×1 convolutions, no dropout), on wasm. */
async function twoSmallEpochs(config: Partial<TrainConfig>): Promise<TrainHistory> {
  await selectBackend('wasm');
  const model = nin({ inputSize: 67, oneByOneCount: 0, dropout: 0, seed: 1 });
  try {
    return await train(model, data, { numEpochs: 2, batchSize: 16, resize: 67, seed: 1, ...config });
  } finally {
    model.dispose();
  }
}

/** Resuming a run whose optimizer has state, without passing that optimizer, is refused. */
async function assertResumeNeedsOptimizer(config: Partial<TrainConfig>, done: EpochResult, kind: string): Promise<void> {
  const model = nin({ inputSize: 67, init: 'he', seed: 1 });
  try {
    await assert.rejects(
      train(model, data, { numEpochs: 2, batchSize: 16, resize: 67, ...config }, {}, { resume: { epochs: [done] } }),
      (e: unknown) => e instanceof ConfigError && new RegExp(`a run with ${kind} continues only with its saved state`).test(e.message));
  } finally {
    model.dispose();
  }
}

describe('SGD with momentum', () => {
  test('momentum must be in [0, 1)', () => {
    assertConfigError(() => resolveTrainConfig({ momentum: 1 }), /momentum must be a number in \[0, 1\), got 1/);
    assertConfigError(() => resolveTrainConfig({ momentum: -0.1 }), /momentum must be a number in \[0, 1\), got -0\.1/);
    assert.equal(resolveTrainConfig({ momentum: 0.9 }).momentum, 0.9);
  });

  test('makeOptimizer: plain SGD at 0, heavy-ball momentum above', () => {
    const plain = makeOptimizer({ lr: 0.1, momentum: 0 });
    const heavy = makeOptimizer({ lr: 0.1, momentum: 0.9 });
    try {
      assert.equal(plain.getClassName(), 'SGD');
      assert.equal(heavy.getClassName(), 'Momentum');
    } finally {
      plain.dispose();
      heavy.dispose();
    }
  });

  test('disposeOptimizer frees all of a used momentum optimizer (tfjs\'s own dispose leaves its lr scalar)', () => {
    const before = tf.memory().numTensors;
    const init = tf.ones([3]);
    const v = tf.variable(init);
    const optimizer = makeOptimizer({ lr: 0.1, momentum: 0.9 });
    const g = tf.ones([3]);
    optimizer.applyGradients({ [v.name]: g });
    disposeOptimizer(optimizer);
    tf.dispose([v, g, init]);
    assert.equal(tf.memory().numTensors, before);
  });

  test('a momentum run trains differently from plain SGD; resuming one needs its restored optimizer', async () => {
    const plain = await twoSmallEpochs({ lr: 0.05 });
    const heavy = await twoSmallEpochs({ lr: 0.05, momentum: 0.9 });
    assert.notEqual(heavy.epochs[1].trainLoss, plain.epochs[1].trainLoss);
    assert.ok(heavy.epochs.every((e) => Number.isFinite(e.trainLoss)));
    await assertResumeNeedsOptimizer({ momentum: 0.9 }, heavy.epochs[0], 'momentum');
  });
});

describe('Adam', () => {
  test('optimizer must be sgd or adam; adam takes no momentum', () => {
    assertConfigError(() => resolveTrainConfig({ optimizer: 'rmsprop' as OptimizerName }),
      /optimizer must be one of sgd, adam, got "rmsprop"/);
    assertConfigError(() => resolveTrainConfig({ optimizer: 'adam', momentum: 0.9 }),
      /momentum must be 0 with the adam optimizer .*got 0\.9; leave momentum out, or use the sgd optimizer/);
    assert.equal(resolveTrainConfig({}).optimizer, 'sgd');
    assert.equal(resolveTrainConfig({ optimizer: 'adam' }).optimizer, 'adam');
  });

  test('makeOptimizer gives Adam with fixed constants; setLearningRate moves its rate; dispose frees all', () => {
    const before = tf.memory().numTensors;
    const optimizer = makeOptimizer({ optimizer: 'adam', lr: 0.001, momentum: 0 });
    assert.equal(optimizer.getClassName(), 'Adam');
    assert.deepEqual(optimizer.getConfig(), { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
    optimizer.setLearningRate(0.01);
    const init = tf.ones([3]);
    const v = tf.variable(init);
    const g = tf.ones([3]);
    optimizer.applyGradients({ [v.name]: g });
    // Adam's first step moves every weight by about lr (the ratio of the averages is ~1).
    assert.ok(Math.abs(v.dataSync()[0] - (1 - 0.01)) < 1e-5, `after one step: ${v.dataSync()[0]}`);
    disposeOptimizer(optimizer);
    tf.dispose([v, g, init]);
    assert.equal(tf.memory().numTensors, before);
  });

  test('an Adam run trains (finite, lower loss) and differs from SGD; resuming one needs its restored optimizer', async () => {
    const adam = await twoSmallEpochs({ optimizer: 'adam', lr: 0.001 });
    const sgd = await twoSmallEpochs({ lr: 0.001 });
    assert.ok(adam.epochs.every((e) => Number.isFinite(e.trainLoss)));
    assert.ok(adam.epochs[1].trainLoss < adam.epochs[0].trainLoss, `loss ${adam.epochs.map((e) => e.trainLoss)}`);
    assert.notEqual(adam.epochs[1].trainLoss, sgd.epochs[1].trainLoss);
    await assertResumeNeedsOptimizer({ optimizer: 'adam' }, adam.epochs[0], 'adam');
  });
});

describe('learning-rate schedule', () => {
  test('lrSchedule must be constant, cosine or linear', () => {
    assertConfigError(() => resolveTrainConfig({ lrSchedule: 'step' as LrSchedule }),
      /lrSchedule must be one of constant, cosine, linear, got "step"/);
  });

  test('learningRateAt: linear falls by the same amount every step after the warm-up, from lr to near 0', () => {
    const linear = resolveTrainConfig({ lr: 0.1, numEpochs: 2, lrSchedule: 'linear', warmupSteps: 4 });
    const rates = Array.from({ length: 20 }, (_, s) => learningRateAt(linear, s, 10));
    assert.deepEqual(rates.slice(0, 5).map((r) => Number(r.toFixed(12))), [0.025, 0.05, 0.075, 0.1, 0.1]);
    rates.slice(5).forEach((r, i) => assert.ok(Math.abs(rates[i + 4] - r - 0.1 / 16) < 1e-12, `step ${i + 5} is lr/16 below step ${i + 4}`));
    assert.ok(Math.abs(rates[12] - 0.05) < 1e-12, `halfway through the 16 decaying steps: ${rates[12]}`);
    assert.ok(Math.abs(rates[19] - 0.1 / 16) < 1e-12, `last step: ${rates[19]}`);
  });

  test('learningRateAt: constant stays; cosine starts at lr, is lr/2 halfway, falls every step, ends above 0', () => {
    const constant = resolveTrainConfig({ lr: 0.1, numEpochs: 2 });
    assert.deepEqual([0, 7, 19].map((s) => learningRateAt(constant, s, 10)), [0.1, 0.1, 0.1]);
    const cosine = resolveTrainConfig({ lr: 0.1, numEpochs: 2, lrSchedule: 'cosine' });
    const rates = Array.from({ length: 20 }, (_, s) => learningRateAt(cosine, s, 10));
    assert.equal(rates[0], 0.1);
    assert.ok(Math.abs(rates[10] - 0.05) < 1e-12, `halfway: ${rates[10]}`);
    rates.slice(1).forEach((r, i) => assert.ok(r < rates[i], `step ${i + 1} below step ${i}`));
    assert.ok(rates[19] > 0 && rates[19] < 0.001, `last step: ${rates[19]}`);
  });

  test('learningRateAt with a warm-up: climbs linearly to lr, then the cosine spans the remaining steps', () => {
    const warm = resolveTrainConfig({ lr: 0.1, numEpochs: 2, lrSchedule: 'cosine', warmupSteps: 4 });
    const rates = Array.from({ length: 20 }, (_, s) => learningRateAt(warm, s, 10));
    assert.deepEqual(rates.slice(0, 4).map((r) => Number(r.toFixed(12))), [0.025, 0.05, 0.075, 0.1]);
    assert.equal(rates[4], 0.1, 'the cosine starts at lr after the warm-up');
    assert.ok(Math.abs(rates[12] - 0.05) < 1e-12, `halfway through the 16 cosine steps: ${rates[12]}`);
    rates.slice(5).forEach((r, i) => assert.ok(r < rates[i + 4], `step ${i + 5} below step ${i + 4}`));
    const constant = resolveTrainConfig({ lr: 0.1, numEpochs: 2, warmupSteps: 2 });
    assert.deepEqual([0, 1, 2, 19].map((s) => learningRateAt(constant, s, 10)), [0.05, 0.1, 0.1, 0.1]);
    assertConfigError(() => resolveTrainConfig({ warmupSteps: -1 }), /warmupSteps must be an integer >= 0, got -1/);
    assertConfigError(() => resolveTrainConfig({ warmupSteps: 1.5 }), /warmupSteps must be an integer >= 0, got 1\.5/);
  });

  test('the loop sets the scheduled rate before every step (its one owner), on an optimizer the caller owns and keeps', async () => {
    await selectBackend('wasm');
    const config = resolveTrainConfig({ numEpochs: 2, batchSize: 16, lr: 0.05, lrSchedule: 'cosine', momentum: 0.9, resize: 67, seed: 1 });
    const optimizer = makeOptimizer(config);
    const seen: number[] = [];
    const sgd = optimizer as tf.SGDOptimizer;
    const set = sgd.setLearningRate.bind(sgd);
    sgd.setLearningRate = (lr: number) => { seen.push(lr); set(lr); };
    const model = nin({ inputSize: 67, oneByOneCount: 0, dropout: 0, seed: 1 });
    try {
      await train(model, data, config, {}, { optimizer });
      const steps = Math.ceil(data.train.count / 16);
      const want = Array.from({ length: 2 * steps }, (_, s) => learningRateAt(config, s, steps));
      assert.deepEqual(seen, want, 'before each step, and nowhere else');
      const [iter, ...velocity] = await optimizer.getWeights();
      assert.equal(iter.tensor.dataSync()[0], 2 * steps, 'the optimizer is alive after train, with its state');
      assert.equal(velocity.length, model.trainableWeights.length);
      iter.tensor.dispose();
    } finally {
      model.dispose();
      disposeOptimizer(optimizer);
    }
  });
});
