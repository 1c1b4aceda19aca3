/**
 * Evaluation: the confusion matrix and per-class accuracy on hand-made predictions, and on a
 * real (small, seeded) model, where they must agree with `evaluateAccuracy` and `predict`.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bandSplit } from '../fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../lib/kernels/backend';
import { FASHION_MNIST_CLASSES } from '../../lib/core/fashionMnist';
import { confusionMatrix, describeConfusion, evaluateModel, formatEvaluation, modelInputSize, mostConfused, perClassAccuracy, summarize } from '../../lib/core/evaluate';
import { nin } from '../../lib/core/model';
import { evaluateAccuracy, predict } from '../../lib/core/evaluate';
import { train } from '../trainModel';
import { ConfigError } from '../../lib/core/validate';

before(async () => {
  await selectBackend('wasm');
});


test('confusionMatrix: rows are true classes, columns predictions', () => {
  const labels = [0, 0, 1, 2, 2, 2];
  const predicted = [0, 1, 1, 2, 0, 2];
  assert.deepEqual(confusionMatrix(labels, predicted, 3), [
    [1, 1, 0],
    [0, 1, 0],
    [1, 0, 2],
  ]);
  assert.deepEqual(confusionMatrix([], [], 2), [[0, 0], [0, 0]]);
});

test('confusionMatrix rejects mismatched lengths and out-of-range classes', () => {
  assert.throws(() => confusionMatrix([0, 1], [0], 2), (e: unknown) => e instanceof ConfigError && /differ in length: 2 vs 1/.test(e.message));
  assert.throws(() => confusionMatrix([0, 3], [0, 1], 3), /out of 0\.\.2 at example 1: label 3/);
  assert.throws(() => confusionMatrix([0], [-1], 3), /prediction -1/);
});

test('perClassAccuracy and summarize: the diagonal over row sums, names attached, null for an absent class', () => {
  const names = ['a', 'b', 'c'];
  const perClass = perClassAccuracy([[1, 1, 0], [0, 1, 0], [0, 0, 0]], names);
  assert.deepEqual(perClass, [
    { label: 0, name: 'a', count: 2, correct: 1, accuracy: 0.5 },
    { label: 1, name: 'b', count: 1, correct: 1, accuracy: 1 },
    { label: 2, name: 'c', count: 0, correct: 0, accuracy: null },
  ]);
  const s = summarize([0, 0, 1], [0, 1, 1], names);
  assert.equal(s.count, 3);
  assert.equal(s.correct, 2);
  assert.equal(s.accuracy, 2 / 3);
  assert.equal(perClassAccuracy([[1]])[0].name, 't-shirt', 'Fashion-MNIST names by default');
});

test('evaluateModel on a trained model agrees with evaluateAccuracy and predict; the table names every class', async () => {
  const data = { train: bandSplit(32), test: bandSplit(30, 3) };
  const model = nin({ inputSize: 67, oneByOneCount: 0, dropout: 0, seed: 1 });
  try {
    await train(model, data, { numEpochs: 2, batchSize: 8, lr: 0.15, resize: 67, seed: 1 });
    const start = tf.memory().numTensors;
    assert.equal(modelInputSize(model), 67);
    const e = evaluateModel(model, data.test, { batchSize: 7 }); // 7: a partial last batch
    assert.equal(tf.memory().numTensors, start, 'no tensors left behind');
    assert.equal(e.count, 30);
    assert.equal(e.accuracy, evaluateAccuracy(model, data.test, { batchSize: 8, resize: 67 }));
    const predicted = predict(model, data.test, 67);
    assert.deepEqual(e.confusion, confusionMatrix(data.test.labels, predicted, 10));
    assert.deepEqual(e.perClass.map((c) => c.name), [...FASHION_MNIST_CLASSES]);
    e.perClass.forEach((c, k) => {
      const count = data.test.labels.filter((l) => l === k).length;
      assert.equal(c.count, count);
      assert.equal(e.confusion[k].reduce((a, b) => a + b, 0), count, `row ${k} sums to the class count`);
      assert.equal(c.accuracy, count === 0 ? null : c.correct / count);
    });
    const text = formatEvaluation(e);
    assert.match(text, new RegExp(`^accuracy ${e.accuracy.toFixed(3)} \\(${e.correct} of 30\\)`));
    for (const name of FASHION_MNIST_CLASSES) assert.ok(text.includes(name), `${name} in:\n${text}`);
    assert.match(text, /rows: true class, columns: predicted class/);
    assert.equal(text.trimEnd().split('\n').length, 1 + 1 + 11 + 1 + 1 + 11);
  } finally {
    model.dispose();
  }
});

test('mostConfused: the largest off-diagonal cells, with their share of the true class, in words', () => {
  const confusion = [[90, 0, 10], [3, 97, 0], [30, 1, 69]];
  const top = mostConfused(confusion, 2, ['shirt', 'bag', 't-shirt']);
  assert.deepEqual(top, [
    { trueClass: 't-shirt', predicted: 'shirt', count: 30, share: 0.3 },
    { trueClass: 'shirt', predicted: 't-shirt', count: 10, share: 0.1 },
  ]);
  assert.equal(describeConfusion(top[0]), 't-shirt taken for shirt 30 times (30% of t-shirt images)');
  assert.deepEqual(mostConfused([[5, 0], [0, 5]]), [], 'a perfect model confuses nothing');
});
