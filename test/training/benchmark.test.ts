/**
 * The benchmark and the resource-use measurement: options are checked, the figures have the
 * reference script's names and sane values, memory is the model's own (not whatever else is
 * alive), a training step needs more than a prediction, and no tensor is left behind.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeConvolutionsActive } from '../../lib/kernels/native';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../lib/kernels/backend';
import { BENCH_DEFAULTS, benchmark, resolveBenchConfig, resourceUse } from '../../lib/training/benchmark';
import { countFlops, countParams, nin } from '../../lib/core/model';
import { ConfigError } from '../../lib/core/validate';

before(async () => {
  await selectBackend('wasm');
});

test('resolveBenchConfig: defaults are the issue\'s 96 px, batch 128; bad values are named', () => {
  assert.deepEqual(resolveBenchConfig(), { resize: 96, batchSize: 128, steps: 5, warmup: 1 });
  assert.deepEqual(resolveBenchConfig({ steps: 2, resize: undefined }), { ...BENCH_DEFAULTS, steps: 2 });
  const rejects = (partial: object, pattern: RegExp) =>
    assert.throws(() => resolveBenchConfig(partial), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
  rejects({ resize: 60 }, /resize must be an integer of at least 67 px for NiN, got 60/);
  rejects({ batchSize: 0 }, /batchSize must be an integer >= 1, got 0/);
  rejects({ steps: 1.5 }, /steps must be an integer >= 1, got 1\.5/);
  rejects({ warmup: -1 }, /warmup must be an integer >= 0, got -1/);
  assert.equal(resolveBenchConfig({ warmup: 0 }).warmup, 0);
  rejects({ step: 3 }, /unknown bench option "step"/);
});

test('benchmark: the reference script\'s fields, positive throughputs, nothing left behind', () => {
  const before = tf.memory().numTensors;
  const r = benchmark({ resize: 67, batchSize: 4, steps: 1 });
  assert.deepEqual(Object.keys(r).sort(), ['backend', 'batch_size', 'conv_library', 'forward_gflops', 'forward_img_s', 'gflops',
    'peak_gflops', 'peak_rss_mb', 'resize', 'train_img_s']);
  assert.equal(r.backend, 'wasm');
  assert.deepEqual([r.resize, r.batch_size], [67, 4]);
  assert.ok(r.forward_img_s > 0 && r.train_img_s > 0, JSON.stringify(r));
  assert.ok(r.peak_rss_mb > 0);
  // FLOP rates follow from the image rates: NiN at 67 px costs countFlops per image forward, three times that to train.
  const counted = nin({ inputSize: 67 });
  const flops = countFlops(counted);
  counted.dispose();
  assert.ok(Math.abs(r.forward_gflops - (r.forward_img_s * flops) / 1e9) < 0.1 + 0.01 * r.forward_gflops);
  assert.ok(Math.abs(r.gflops - (3 * r.train_img_s * flops) / 1e9) < 0.1 + 0.01 * r.gflops);
  if (nativeConvolutionsActive()) {
    assert.ok(r.peak_gflops! > 0 && /^(oneDNN|OpenBLAS)/.test(r.conv_library), JSON.stringify(r));
  } else {
    assert.deepEqual([r.peak_gflops, r.conv_library], [null, 'wasm kernels']);
  }
  assert.equal(tf.memory().numTensors, before);
});

test('resourceUse: params and FLOPs of the model; training needs more memory than predicting, both more than the weights', async () => {
  const model = nin({ inputSize: 67, seed: 1 });
  const before = tf.memory().numTensors;
  try {
    const u = await resourceUse(model, 8);
    assert.equal(u.params, countParams(model));
    assert.equal(u.flopsPerImage, countFlops(model));
    const weights = u.params * 4;
    const batch = 8 * 67 * 67 * 4;
    assert.ok(u.predictPeakBytes > weights + batch, `predict ${u.predictPeakBytes} > weights + batch ${weights + batch}`);
    // The backward pass keeps every layer's output and adds gradients as large as the weights.
    assert.ok(u.trainPeakBytes > u.predictPeakBytes + weights, `train ${u.trainPeakBytes} vs predict ${u.predictPeakBytes}`);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    model.dispose();
  }
});

test('resourceUse counts the model\'s own memory: unrelated live tensors do not change it, a bigger batch does', async () => {
  const model = nin({ inputSize: 67, seed: 1 });
  try {
    const alone = await resourceUse(model, 8);
    const unrelated = tf.zeros([1000, 1000]); // 4 MB held elsewhere
    const crowded = await resourceUse(model, 8);
    unrelated.dispose();
    assert.deepEqual(crowded, alone);
    const bigger = await resourceUse(model, 16);
    assert.ok(bigger.trainPeakBytes > alone.trainPeakBytes && bigger.predictPeakBytes > alone.predictPeakBytes);
  } finally {
    model.dispose();
  }
});

