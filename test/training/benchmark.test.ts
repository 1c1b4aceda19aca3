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
import {
  BENCH_DEFAULTS, benchmark, checkBenchFits, checkForwardFits, forwardBatchLimit, forwardBytesPerExample, resolveBenchConfig, resourceUse,
} from '../../lib/training/benchmark';
import { main } from '../../lib/frontends/cli';
import { saveLayersModel } from '../../lib/storage/layersFolder';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
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


test('a size that cannot run is refused in one line naming it, before anything is allocated', () => {
  const before = tf.memory().numTensors;
  const refused = (partial: object, field: string, pattern: RegExp) => assert.throws(() => benchmark(partial), (e: unknown) =>
    e instanceof ConfigError && e.field === field && pattern.test(e.messageFor({ resize: '--resize', batchSize: '--batch-size' })));
  // One training image past the memory a pass may use (it ran 17 s, then "memory access out of bounds").
  refused({ resize: 10000 }, 'resize', /^--resize 10000 needs about \d+\.\d GB per training image.*; use images of at most about \d+ px$/);
  assert.throws(() => checkBenchFits({ resize: 10000 }), (e: unknown) => e instanceof ConfigError && /^resize 10000 needs/.test(e.message));
  // Each image trains, but the forward pass takes the batch whole.
  refused({ resize: 1400, batchSize: 128 }, 'batchSize',
    /^--batch-size 128 needs about \d+\.\d GB for one forward pass at 1400 px, .*; use --batch-size (\d+) or less$/);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(checkBenchFits({ resize: 224, batchSize: 128 }).resize, 224); // the reference sizes fit
  assert.deepEqual(checkBenchFits({ resize: 500, batchSize: 128 }), { resize: 500, batchSize: 128, steps: 5, warmup: 1 });
});

test('forwardBatchLimit and checkForwardFits: the most images one forward pass may take', () => {
  const model = nin({ inputSize: 1400 });
  try {
    const fits = forwardBatchLimit(model);
    assert.ok(fits >= 1 && fits < 128, String(fits));
    assert.ok(forwardBytesPerExample(model) * fits <= 2 ** 31 && forwardBytesPerExample(model) * (fits + 1) > 2 ** 31);
    checkForwardFits(model, fits);
    assert.throws(() => checkForwardFits(model, fits + 1), (e: unknown) => e instanceof ConfigError && e.field === 'batchSize' &&
      e.message.endsWith(`use batchSize ${fits} or less`));
  } finally {
    model.dispose();
  }
  const huge = nin({ inputSize: 20000 });
  try {
    assert.throws(() => forwardBatchLimit(huge), (e: unknown) => e instanceof ConfigError && e.field === 'resize' &&
      /^resize 20000 needs about \d+\.\d GB per image for a forward pass/.test(e.message));
  } finally {
    huge.dispose();
  }
});

test('steps past 2^53 are refused as beyond the exact integers', () => {
  assert.throws(() => resolveBenchConfig({ steps: 2 ** 53 + 2 }), (e: unknown) => e instanceof ConfigError &&
    e.message === 'steps 9007199254740994 is beyond the largest exact integer, 9007199254740991');
});

/** `nin ...args` in this process, its output captured. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'nin', ...args], { out: (t) => { out += t; }, err: (t) => { err += t; }, isTTY: false });
  return { code, out, err };
}

test('nin bench --resize 10000: one line naming --resize, and with --json one error object on stdout', async () => {
  const plain = await cli('bench', '--resize', '10000');
  assert.equal(plain.code, 1);
  assert.equal(plain.out, '', 'no banner before the refusal');
  assert.match(plain.err, /^nin: --resize 10000 needs about [\d.]+ GB per training image[^\n]*\n$/);
  const json = await cli('bench', '--resize', '10000', '--json');
  assert.equal(json.code, 1);
  assert.equal(json.err, plain.err);
  assert.deepEqual(JSON.parse(json.out), {
    command: 'bench', error: { message: plain.err.slice('nin: '.length, -1), kind: 'config' },
  });
});

test('--json errors: usage errors too (exit 2), and integers past 2^53 named as such', async () => {
  const r = await cli('bench', '--steps', '9007199254740993', '--json');
  assert.equal(r.code, 2);
  const line = "option '--steps <n>' argument '9007199254740993' is invalid. 9007199254740993 is beyond the largest exact integer, 9007199254740991.";
  assert.equal(r.err, `nin: ${line}\n`);
  assert.deepEqual(JSON.parse(r.out), { command: 'bench', error: { message: line, kind: 'config' } });
  const plain = await cli('bench', '--steps', '9007199254740993');
  assert.equal(plain.out, '', 'without --json stdout stays empty');
});

test('nin eval of a model whose images cannot be predicted: one line naming its input size; too big a --batch-size named', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-bench-eval-'));
  try {
    const saveAt = async (inputSize: number) => {
      const model = nin({ inputSize, seed: 1 });
      const folder = path.join(tmp, `nin-${inputSize}`);
      await saveLayersModel(model, folder);
      model.dispose();
      return folder;
    };
    const huge = await saveAt(20000); // the data is read after the check: none needed
    const r = await cli('eval', '--model', huge, '--data-dir', path.join(tmp, 'no-data'), '--backend', 'wasm', '--json');
    assert.equal(r.code, 1);
    assert.match(r.err, /^nin: the model in .*nin-20000: its input size 20000 needs about [\d.]+ GB per image for a forward pass, [^\n]*\n$/);
    assert.equal(JSON.parse(r.out).error.kind, 'config');
    const big = await saveAt(1400);
    const b = await cli('eval', '--model', big, '--data-dir', path.join(tmp, 'no-data'), '--backend', 'wasm', '--batch-size', '256');
    assert.equal(b.code, 1);
    assert.match(b.err, /^nin: --batch-size 256 needs about [\d.]+ GB for one forward pass at 1400 px, [^\n]*; use --batch-size \d+ or less\n$/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
