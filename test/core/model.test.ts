/**
 * The NiN block and network: the chapter's shapes and parameter counts, the exercises'
 * variants, option errors, seeded initialisation, and tensors that are all given back.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../../lib/kernels/backend';
import {
  MIN_INPUT_SIZE,
  NinConfig,
  countParams,
  featureMapSize,
  formatLayerSummary,
  layerSummary,
  logitsOf,
  nin,
  ninBlock,
  resolveNinConfig,
} from '../../lib/core/model';
import { ConfigError } from '../../lib/core/validate';

/** A forward pass on one image of zeros: the shape the model really gives. */
function probeOutputShape(model: tfl.LayersModel, inputSize: number, channels = 1): number[] {
  return tf.tidy(() => (model.predict(tf.zeros([1, inputSize, inputSize, channels])) as tf.Tensor).shape);
}

before(async () => {
  await selectBackend('wasm');
});

/** Builds a model, hands it to `fn`, and always disposes it. */
function withModel<T>(config: Partial<NinConfig>, fn: (model: tfl.Sequential) => T): T {
  const model = nin(config);
  try {
    return fn(model);
  } finally {
    model.dispose();
  }
}

/** Trainable parameters of a k×k convolution from `cin` to `cout` channels, with bias. */
const convParams = (k: number, cin: number, cout: number) => k * k * cin * cout + cout;

/**
 * Parameters per block and in all, worked out from the architecture (not from tfjs):
 * blocks (96, 11×11), (256, 5×5), (384, 3×3), (classes, 3×3), each followed by `count`
 * convolutions of `kernel`×`kernel`; a dense head adds a (side²·classes → classes) layer,
 * side being 5 at 224 px.
 */
function expectedParams({ count = 2, kernel = 1, dense = false, classes = 10 } = {}) {
  const block = (k: number, cin: number, cout: number) => convParams(k, cin, cout) + count * convParams(kernel, cout, cout);
  const blocks = [block(11, 1, 96), block(5, 96, 256), block(3, 256, 384), block(3, 384, classes)];
  const head = dense ? 5 * 5 * classes * classes + classes : 0;
  return { blocks, head, total: blocks.reduce((a, b) => a + b, 0) + head };
}

function assertConfigError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/, 'message should be one line');
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// The chapter's network

test("nin() at 224 px: the chapter's rows, NCHW shapes and parameters", () => {
  const start = tf.memory().numTensors;
  withModel({}, (model) => {
    const rows = layerSummary(model);
    assert.deepEqual(rows.map((r) => r.name), [
      'block1', 'pool1', 'block2', 'pool2', 'block3', 'pool3', 'dropout', 'block4', 'global_avg_pool', 'flatten',
    ]);
    assert.deepEqual(rows.map((r) => r.shapeNCHW), [
      [1, 96, 54, 54], [1, 96, 26, 26], [1, 256, 26, 26], [1, 256, 12, 12], [1, 384, 12, 12],
      [1, 384, 5, 5], [1, 384, 5, 5], [1, 10, 5, 5], [1, 10, 1, 1], [1, 10],
    ]);
    // tfjs's own layout for the same rows: channels last.
    assert.deepEqual(rows[0].shapeNHWC, [1, 54, 54, 96]);
    assert.deepEqual(rows[8].shapeNHWC, [1, 1, 1, 10]);

    const params = Object.fromEntries(rows.map((r) => [r.name, r.params]));
    assert.deepEqual(
      [params.block1, params.block2, params.block3, params.block4],
      [30336, 746240, 1180800, 34790],
    );
    assert.deepEqual([params.block1, params.block2, params.block3, params.block4], expectedParams().blocks);
    for (const name of ['pool1', 'pool2', 'pool3', 'dropout', 'global_avg_pool', 'flatten']) {
      assert.equal(params[name], 0, `${name} has no parameters`);
    }
    assert.equal(countParams(model), 1_992_166);
    assert.equal(rows.reduce((s, r) => s + r.params, 0), 1_992_166);
    assert.equal(expectedParams().total, 1_992_166);
  });
  assert.equal(tf.memory().numTensors, start, 'disposing the model frees every weight');
});

test('a real forward pass gives [1, 10] at 224, 96 and the minimum 67 px', () => {
  const start = tf.memory().numTensors;
  for (const size of [224, 96, MIN_INPUT_SIZE]) {
    withModel({ inputSize: size, seed: 1 }, (model) => {
      assert.deepEqual(probeOutputShape(model, size), [1, 10], `at ${size} px`);
      // The parameter count does not depend on the input size (global average pooling).
      assert.equal(countParams(model), 1_992_166, `params at ${size} px`);
    });
  }
  assert.equal(MIN_INPUT_SIZE, 67);
  assert.equal(tf.memory().numTensors, start);
});

test('featureMapSize: side of the last feature map', () => {
  assert.equal(featureMapSize(224), 5);
  assert.equal(featureMapSize(96), 1);
  assert.equal(featureMapSize(67), 1);
  assert.equal(featureMapSize(66), 0, 'at 66 px nothing is left after the third max-pool');
  assertConfigError(() => nin({ inputSize: 66 }), /at least 67 px.*got 66/);
  assertConfigError(() => resolveNinConfig({ inputSize: 66 }), /67/);
  assertConfigError(() => resolveNinConfig({ inputSize: 100.5 }), /integer.*got 100\.5/);
});

// ---------------------------------------------------------------------------------------------
// The exercises' variants

for (const count of [0, 1, 3]) {
  test(`oneByOneCount ${count}: ${count} follow-up convolutions per block`, () => {
    withModel({ oneByOneCount: count }, (model) => {
      // 4 blocks of 1 + count convolutions, 3 pools, dropout, average pool, flatten.
      assert.equal(model.layers.length, 4 * (1 + count) + 6);
      assert.equal(model.layers.filter((l) => l.getClassName() === 'Conv2D').length, 4 * (1 + count));
      const rows = layerSummary(model);
      assert.equal(rows.length, 10, 'still the chapter\'s ten rows');
      assert.deepEqual(rows.filter((r) => r.name.startsWith('block')).map((r) => r.params), expectedParams({ count }).blocks);
      assert.equal(countParams(model), expectedParams({ count }).total);
      assert.deepEqual(probeOutputShape(model, 224), [1, 10]);
    });
  });
}

test('oneByOneKernel 3: the follow-up convolutions are 3×3 and keep the size', () => {
  withModel({ oneByOneKernel: 3 }, (model) => {
    assert.deepEqual(model.getLayer('block2_conv1').getWeights()[0].shape, [3, 3, 256, 256]);
    assert.equal(countParams(model), expectedParams({ kernel: 3 }).total);
    assert.deepEqual(layerSummary(model).map((r) => r.shapeNCHW), [
      [1, 96, 54, 54], [1, 96, 26, 26], [1, 256, 26, 26], [1, 256, 12, 12], [1, 384, 12, 12],
      [1, 384, 5, 5], [1, 384, 5, 5], [1, 10, 5, 5], [1, 10, 1, 1], [1, 10],
    ]);
    assert.deepEqual(probeOutputShape(model, 224), [1, 10]);
  });
});

test("head 'dense': flatten then a dense layer to the classes", () => {
  withModel({ head: 'dense' }, (model) => {
    const names = model.layers.map((l) => l.name);
    assert.ok(names.includes('dense'), `layers: ${names.join(', ')}`);
    assert.ok(!names.includes('global_avg_pool'));
    assert.equal(model.getLayer('dense').getClassName(), 'Dense');
    assert.deepEqual(model.getLayer('dense').getWeights()[0].shape, [5 * 5 * 10, 10]);
    assert.equal(countParams(model), expectedParams({ dense: true }).total);
    assert.deepEqual(probeOutputShape(model, 224), [1, 10]);
  });
});

test('numClasses sets the last block and the output', () => {
  withModel({ numClasses: 3, inputSize: 67 }, (model) => {
    assert.deepEqual(probeOutputShape(model, 67), [1, 3]);
    assert.equal(countParams(model), expectedParams({ classes: 3 }).total);
  });
});

// ---------------------------------------------------------------------------------------------
// Options

test('resolveNinConfig fills the chapter defaults', () => {
  assert.deepEqual(resolveNinConfig(), {
    numClasses: 10, inputSize: 224, inputChannels: 1, oneByOneCount: 2, oneByOneKernel: 1,
    dropout: 0.5, head: 'gap', init: 'glorot', classBlockBias: 0, seed: undefined,
  });
  assert.equal(resolveNinConfig({ seed: undefined, dropout: 0 }).dropout, 0);
});

test("init 'he': seeded, reproducible, and each layer's kernel has variance 2 / fan in", () => {
  const a = nin({ inputSize: 67, seed: 1, init: 'he' });
  const b = nin({ inputSize: 67, seed: 1, init: 'he' });
  try {
    const wa = a.getWeights().map((w) => w.dataSync());
    const wb = b.getWeights().map((w) => w.dataSync());
    wa.forEach((w, i) => assert.ok(w.every((v, j) => v === wb[i][j]), `weight ${i} reproduces (seed 1 derives a 0 seed for block 1)`));
    for (const layer of a.layers.filter((l) => l.getClassName() === 'Conv2D')) {
      const kernel = layer.getWeights()[0];
      const [kh, kw, ci] = kernel.shape;
      const values = kernel.dataSync();
      const variance = Array.from(values).reduce((s, v) => s + v * v, 0) / values.length;
      const expected = 2 / (kh * kw * ci);
      assert.ok(Math.abs(variance / expected - 1) < 0.15, `${layer.name}: variance ${variance} vs ${expected}`);
    }
  } finally {
    a.dispose();
    b.dispose();
  }
  assertConfigError(() => resolveNinConfig({ init: 'xavier' as never }), /init must be one of glorot, he, d2l-torch, got "xavier"/);
});

test('resolveNinConfig rejects bad options with one-line messages', () => {
  assertConfigError(() => resolveNinConfig({ oneByOnCount: 2 } as never), /unknown model option "oneByOnCount"; known: .*oneByOneCount/);
  assertConfigError(() => resolveNinConfig({ oneByOneCount: 4 }), /oneByOneCount must be an integer from 0 to 3, got 4/);
  assertConfigError(() => resolveNinConfig({ oneByOneCount: -1 }), /oneByOneCount .* got -1/);
  assertConfigError(() => resolveNinConfig({ oneByOneKernel: 2 as never }), /oneByOneKernel must be 1 or 3, got 2/);
  assertConfigError(() => resolveNinConfig({ dropout: 1 }), /dropout must be a number in \[0, 1\), got 1/);
  assertConfigError(() => resolveNinConfig({ dropout: -0.1 }), /dropout .* got -0\.1/);
  assertConfigError(() => resolveNinConfig({ head: 'x' as never }), /head must be one of gap, dense, got "x"/);
  assertConfigError(() => resolveNinConfig({ numClasses: 1 }), /numClasses must be an integer >= 2, got 1/);
  assertConfigError(() => resolveNinConfig({ seed: -1 }), /seed must be an integer >= 0, got -1/);
  assertConfigError(() => nin({ oneByOneCount: 4 }), /oneByOneCount/);
});

// ---------------------------------------------------------------------------------------------
// Initialisation

function kernel(model: tfl.LayersModel, layer: string): Float32Array {
  return model.getLayer(layer).getWeights()[0].dataSync() as Float32Array;
}

test('the same seed gives the same initial weights, another seed others', () => {
  const start = tf.memory().numTensors;
  const a = nin({ inputSize: 67, seed: 7 });
  const b = nin({ inputSize: 67, seed: 7 });
  const c = nin({ inputSize: 67, seed: 8 });
  try {
    const wa = a.getWeights();
    const wb = b.getWeights();
    assert.equal(wa.length, wb.length);
    wa.forEach((w, i) => assert.deepEqual(w.dataSync(), wb[i].dataSync(), `weight ${i} (${a.weights[i].name})`));
    for (const layer of ['block1_conv0', 'block2_conv1', 'block4_conv2']) {
      assert.notDeepEqual(kernel(a, layer), kernel(c, layer), `${layer} with seeds 7 and 8`);
    }
    // Within one model, layers of the same shape do not start alike.
    assert.notDeepEqual(kernel(a, 'block1_conv1'), kernel(a, 'block1_conv2'));
  } finally {
    [a, b, c].forEach((m) => m.dispose());
  }
  assert.equal(tf.memory().numTensors, start);
});

test('no seed draws fresh weights each time', () => {
  const a = nin({ inputSize: 67 });
  const b = nin({ inputSize: 67 });
  try {
    assert.notDeepEqual(kernel(a, 'block1_conv0'), kernel(b, 'block1_conv0'));
  } finally {
    a.dispose();
    b.dispose();
  }
});

// Documents a weakness of lib/core/model.ts: per-layer seeds are `seed + 10 * block + conv`, so
// nin({ seed: 0 })'s block1_conv2 (seed 12) is nin({ seed: 1 })'s block1_conv1 (seed 12).
// Runs meant to be independent (--seed 0 vs --seed 1) then share most 1×1 layers' starting weights.
test('models with seeds 0 and 1 share no layer of initial weights', () => {
  const a = nin({ inputSize: 67, seed: 0 });
  const b = nin({ inputSize: 67, seed: 1 });
  try {
    const shared: string[] = [];
    for (const la of a.layers.filter((l) => l.getWeights().length > 0)) {
      for (const lb of b.layers.filter((l) => l.getWeights().length > 0)) {
        const [ka] = la.getWeights();
        const [kb] = lb.getWeights();
        if (ka.shape.join() !== kb.shape.join()) continue;
        const vb = kb.dataSync();
        if (ka.dataSync().every((v, i) => v === vb[i])) {
          shared.push(`seed 0 ${la.name} = seed 1 ${lb.name}`);
        }
      }
    }
    assert.deepEqual(shared, []);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('weights are Glorot (Xavier) uniform, biases zero', () => {
  withModel({ seed: 3 }, (model) => {
    const [w, b] = model.getLayer('block1_conv0').getWeights();
    assert.deepEqual(w.shape, [11, 11, 1, 96]);
    const fanIn = 11 * 11 * 1;
    const fanOut = 11 * 11 * 96;
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    const values = w.dataSync();
    let max = 0;
    let sum = 0;
    for (const v of values) {
      max = Math.max(max, Math.abs(v));
      sum += v;
    }
    assert.ok(max <= limit, `max |w| ${max} exceeds the Glorot limit ${limit}`);
    assert.ok(max > 0.95 * limit, `max |w| ${max} is far below the Glorot limit ${limit}: not Glorot uniform`);
    assert.ok(Math.abs(sum / values.length) < 0.05 * limit, 'centred on zero');
    assert.ok(b.dataSync().every((v) => v === 0), 'biases start at zero');
  });
});

test("init 'd2l-torch': Glorot kernels as 'glorot', biases uniform in ±1/√(fan in), seeded; classBlockBias still sets the class block's", () => {
  const torch = nin({ inputSize: 67, seed: 5, init: 'd2l-torch' });
  const glorot = nin({ inputSize: 67, seed: 5 });
  const again = nin({ inputSize: 67, seed: 5, init: 'd2l-torch' });
  const fanIns: Record<string, number> = { block1_conv0: 121, block1_conv1: 96, block2_conv0: 25 * 96, block3_conv0: 9 * 256, block4_conv0: 9 * 384, block4_conv2: 10 };
  for (const [name, fanIn] of Object.entries(fanIns)) {
    const [w, b] = torch.getLayer(name).getWeights();
    assert.deepEqual(Array.from(w.dataSync()), Array.from(glorot.getLayer(name).getWeights()[0].dataSync()), `${name}: Glorot kernel`);
    const bias = Array.from(b.dataSync());
    const bound = 1 / Math.sqrt(fanIn);
    assert.ok(bias.every((v) => Math.abs(v) <= bound), `${name}: within ±${bound}`);
    assert.ok(Math.max(...bias.map(Math.abs)) > 0.5 * bound, `${name}: spread over the range, not zero`);
    assert.deepEqual(bias, Array.from(again.getLayer(name).getWeights()[1].dataSync()), `${name}: the seed decides`);
  }
  const b1 = Array.from(torch.getLayer('block1_conv0').getWeights()[1].dataSync());
  const b2 = Array.from(torch.getLayer('block1_conv1').getWeights()[1].dataSync());
  assert.notDeepEqual(b1.slice(0, 10), b2.slice(0, 10), 'each layer draws its own');
  const lifted = nin({ inputSize: 67, seed: 5, init: 'd2l-torch', classBlockBias: 0.1 });
  assert.ok(Array.from(lifted.getLayer('block4_conv1').getWeights()[1].dataSync()).every((v) => v === Math.fround(0.1)));
  assert.throws(() => nin({ init: 'torch' as never }), /init must be one of glorot, he, d2l-torch, got "torch"/);
  [torch, glorot, again, lifted].forEach((m) => m.dispose());
});

// ---------------------------------------------------------------------------------------------
// The block, the table

test('ninBlock returns 1 + oneByOneCount ReLU convolutions', () => {
  for (const count of [0, 1, 2, 3]) {
    const layers = ninBlock(16, 5, 1, 'same', { oneByOneCount: count, name: `b${count}` });
    assert.equal(layers.length, 1 + count);
    for (const [i, layer] of layers.entries()) {
      assert.equal(layer.getClassName(), 'Conv2D');
      const config = layer.getConfig();
      assert.equal(config.activation, 'relu', `${layer.name}`);
      assert.equal(config.filters, 16);
      assert.deepEqual(config.kernelSize, i === 0 ? [5, 5] : [1, 1]);
      assert.equal(layer.name, `b${count}_conv${i}`);
    }
  }
  const defaults = ninBlock(8, 11, 4, 'valid');
  assert.equal(defaults.length, 3, 'two 1×1 convolutions by default, as in the chapter');
  assert.deepEqual(defaults[0].getConfig().strides, [4, 4]);
  assert.equal(defaults[0].getConfig().padding, 'valid');
  assert.deepEqual(defaults[1].getConfig().strides, [1, 1]);
  const three = ninBlock(8, 3, 1, 'same', { oneByOneKernel: 3 });
  assert.deepEqual(three[1].getConfig().kernelSize, [3, 3]);
});

test('formatLayerSummary prints the table with the total', () => {
  withModel({}, (model) => {
    const text = formatLayerSummary(layerSummary(model));
    const lines = text.split('\n');
    assert.equal(lines.length, 1 + 10 + 1, 'header, ten rows, total');
    assert.match(lines[0], /layer\s+output shape \(N, C, H, W\)\s+params/);
    assert.match(lines[1], /^block1\s+\(1, 96, 54, 54\)\s+30,336$/);
    assert.match(text, /global_avg_pool\s+\(1, 10, 1, 1\)\s+0/);
    assert.match(lines[11], /^total\s+1,992,166$/);
    assert.ok(text.includes('1,992,166'));
  });
});

test('classBlockBias: the last block starts with that bias, every other layer with 0', () => {
  const model = nin({ inputSize: 67, seed: 7, classBlockBias: 0.1 });
  const plain = nin({ inputSize: 67, seed: 7 });
  for (const [i, layer] of model.layers.entries()) {
    const weights = layer.getWeights();
    if (weights.length < 2) continue;
    const bias = Array.from(weights[1].dataSync());
    assert.ok(bias.every((b) => b === (layer.name.startsWith('block4') ? Math.fround(0.1) : 0)), layer.name);
    assert.deepEqual(Array.from(weights[0].dataSync()), Array.from(plain.layers[i].getWeights()[0].dataSync()), `${layer.name}: same kernel`);
  }
  assert.throws(() => nin({ classBlockBias: Number.NaN }), /classBlockBias must be a number from -10 to 10, got NaN/);
  model.dispose();
  plain.dispose();
});

test('at initialisation, classBlockBias 0.1 lifts the class scores from about 1e-4 to 0.1 and leaves fewer class channels dead', () => {
  // Random images stand in for data: what matters is that the inputs are non-negative.
  const xs = tf.randomUniform([64, 67, 67, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
  const start = (bias: number, seed: number) => {
    const model = nin({ inputSize: 67, seed, classBlockBias: bias });
    const scores = model.predict(xs) as tf.Tensor;
    const max = tf.max(scores, 0);
    const r = { dead: Array.from(max.dataSync()).filter((m) => m === 0).length, mean: tf.mean(scores).dataSync()[0] };
    tf.dispose([scores, max]);
    model.dispose();
    return r;
  };
  const seeds = [0, 1, 2, 3, 4];
  const [zero, lifted] = [0, 0.1].map((b) => seeds.map((s) => start(b, s)));
  const dead = (rs: { dead: number }[]) => rs.reduce((n, r) => n + r.dead, 0);
  assert.ok(dead(zero) > dead(lifted), `dead class channels: ${dead(zero)} with bias 0, ${dead(lifted)} with 0.1`);
  assert.ok(zero.every((r) => r.mean < 1e-2) && lifted.every((r) => r.mean > 0.05), 'score scale');
  xs.dispose();
});

test('logitsOf runs a batch in one forward pass (model.predict alone cuts it into passes of 32) and equals predict', async () => {
  const model = nin({ inputSize: 67 });
  const xs = tf.randomUniform([40, 67, 67, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
  try {
    const convolutions = model.layers.filter((l) => l.getClassName() === 'Conv2D').length;
    const before = tf.memory().numTensors;
    const info = await tf.profile(() => { tf.dispose(logitsOf(model, xs)); });
    const convKernels = info.kernels.filter((k) => /Conv2D/.test(k.name)).length;
    assert.equal(convKernels, convolutions, 'one convolution kernel per layer for the whole batch');
    const gap = tf.tidy(() => {
      const mine = logitsOf(model, xs);
      assert.deepEqual(mine.shape, [40, 10]);
      return tf.max(tf.abs(tf.sub(mine, model.predict(xs) as tf.Tensor))).dataSync()[0];
    });
    assert.ok(gap < 1e-5, `largest difference ${gap}`);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    xs.dispose();
    model.dispose();
  }
});
