/**
 * The native MaxPoolGrad, Sum and element-wise kernels (lib/kernels/native.ts) against the
 * `cpu` backend, and this project's two fused backward kernels (NinReluBackprop,
 * NinMaxPoolReluBackprop) and Adam's update (NinAdamUpdate) against the tfjs code they stand for. The convolutions of the
 * same addon are checked in wasmConvGrad.test.ts.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../lib/kernels/backend';
import { POOL_RELU_BACKPROP, RELU_BACKPROP } from '../../lib/kernels/kernelNames';
import { mulberry32 } from '../../lib/core/random';
import { ADAM, ADAM_UPDATE, makeOptimizer } from '../../lib/core/optimizers';
import { skipUnless } from '../optional';

/** Both suites need the addon: skipped without it, or failing in its place under NIN_REQUIRE_NATIVE=1. */
const skip = skipUnless(['native'], undefined, 'the native kernel tests');

function values(n: number, seed: number, zeroFraction = 0): Float32Array {
  const r = mulberry32(seed);
  // Rounded to a coarse grid and partly zeroed, so pooling windows often hold ties.
  return Float32Array.from({ length: n }, () => (r() < zeroFraction ? 0 : Math.round((r() * 2 - 1) * 4) / 4));
}

interface PoolCase { size: number; c: number; k: number; s: number; pad: 'valid' | 'same' }
const poolCases: PoolCase[] = [
  { size: 22, c: 3, k: 3, s: 2, pad: 'valid' }, // NiN's pooling
  { size: 10, c: 5, k: 3, s: 2, pad: 'valid' },
  { size: 9, c: 2, k: 2, s: 2, pad: 'same' },
  { size: 8, c: 4, k: 3, s: 1, pad: 'same' },
];

/** [y, dx] of y = maxPool(x), loss sum(y * dy). Inputs have many zeros (post-ReLU ties). */
function poolGrad(c: PoolCase, seed: number): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(2 * c.size * c.size * c.c, seed, 0.4), [2, c.size, c.size, c.c]);
    const y = tf.maxPool(x, c.k, c.s, c.pad);
    const dy = tf.tensor4d(values(y.size, seed + 1), y.shape as [number, number, number, number]);
    const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(xx as tf.Tensor4D, c.k, c.s, c.pad), dy)))(x);
    return [y.dataSync() as Float32Array, dx.dataSync() as Float32Array];
  });
}

interface SumCase { shape: number[]; axis: number[]; keepDims: boolean }
const sumCases: SumCase[] = [
  { shape: [4, 5, 6, 7], axis: [0, 1, 2], keepDims: false }, // a bias gradient: native
  { shape: [4, 5, 6, 7], axis: [0, 1], keepDims: true }, //     native, keepDims
  { shape: [4, 5, 6, 7], axis: [2, 1, 0], keepDims: false }, // unsorted leading axes: native
  { shape: [4, 5, 6, 7], axis: [1, 2], keepDims: false }, //    not leading: wasm's Sum
  { shape: [4, 5, 6, 7], axis: [0, 1, 2, 3], keepDims: false }, // everything: wasm's Sum
  { shape: [9, 3], axis: [0], keepDims: false }, //             fewer rows than the sum's blocks
  { shape: [64, 22, 22, 96], axis: [0, 1, 2], keepDims: false }, // NiN's first block at 96 px
];

function sumOf(c: SumCase, seed: number): { shape: number[]; data: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor(values(c.shape.reduce((a, b) => a * b, 1), seed), c.shape);
    const y = tf.sum(x, c.axis, c.keepDims);
    return { shape: y.shape, data: y.dataSync() as Float32Array };
  });
}

/** The passes a training step runs between convolutions (native from ELEMENTWISE_MIN = 2^15 elements). */
interface ElementwiseCase { name: string; shapes: number[][]; op: (...xs: tf.Tensor[]) => tf.Tensor }
const big = [8, 22, 22, 96]; // 371,712 elements: native
const elementwiseCases: ElementwiseCase[] = [
  { name: 'Relu', shapes: [big], op: (x) => tf.relu(x) },
  { name: 'Step', shapes: [big], op: (x) => tf.step(x) },
  { name: 'Step with alpha 0.25', shapes: [big], op: (x) => tf.step(x, 0.25) },
  { name: 'Add, bias along the last axis', shapes: [big, [96]], op: (a, b) => tf.add(a, b) },
  { name: 'Add, bias first', shapes: [[96], big], op: (a, b) => tf.add(a, b) },
  { name: 'Add, same shapes', shapes: [big, big], op: (a, b) => tf.add(a, b) },
  { name: 'Multiply, same shapes (the ReLU gradient)', shapes: [big, big], op: (a, b) => tf.mul(a, b) },
  { name: 'Multiply, a vector along the last axis', shapes: [big, [96]], op: (a, b) => tf.mul(a, b) },
  { name: 'Add, another broadcast (wasm)', shapes: [big, [22, 96]], op: (a, b) => tf.add(a, b) },
  { name: 'Multiply, a scalar (wasm)', shapes: [big, []], op: (a, b) => tf.mul(a, b) },
  { name: 'Relu, small (wasm)', shapes: [[4, 5, 6]], op: (x) => tf.relu(x) },
];

/** Values on a coarse grid with every special float sprinkled in. */
function specialValues(n: number, seed: number): Float32Array {
  const specials = [NaN, Infinity, -Infinity, -0, 0];
  const v = values(n, seed);
  const r = mulberry32(seed + 7);
  for (let i = 0; i < n; i++) if (r() < 0.05) v[i] = specials[Math.floor(r() * specials.length)];
  return v;
}

function elementwise(c: ElementwiseCase, seed: number): { shape: number[]; data: Float32Array } {
  return tf.tidy(() => {
    const xs = c.shapes.map((shape, k) => tf.tensor(specialValues(shape.reduce((a, b) => a * b, 1), seed + k), shape));
    const y = c.op(...xs);
    return { shape: y.shape, data: y.dataSync() as Float32Array };
  });
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= 1e-4 * Math.max(1, Math.abs(expected[i])),
      `${what}[${i}]: native ${actual[i]}, cpu ${expected[i]}`);
  }
}

describe('native MaxPoolGrad, Sum and element-wise kernels match the cpu backend', { skip }, () => {
  const pools = new Map<number, Float32Array[]>();
  const sums = new Map<number, { shape: number[]; data: Float32Array }>();
  const elementwiseResults = new Map<number, { shape: number[]; data: Float32Array }>();

  before(async () => {
    await selectBackend('cpu');
    poolCases.forEach((c, i) => pools.set(i, poolGrad(c, 10 + i)));
    sumCases.forEach((c, i) => sums.set(i, sumOf(c, 50 + i)));
    elementwiseCases.forEach((c, i) => elementwiseResults.set(i, elementwise(c, 80 + i)));
    const info = await selectBackend('wasm', { native: true });
    assert.match(info.description, /native/);
  });

  poolCases.forEach((c, i) => {
    test(`max-pool ${c.k}/${c.s} ${c.pad} on ${c.size}px × ${c.c}: output and gradient (ties → first max)`, async () => {
      await selectBackend('wasm', { native: true });
      const [y, dx] = poolGrad(c, 10 + i);
      assertClose(y, pools.get(i)![0], 'y');
      assertClose(dx, pools.get(i)![1], 'dx');
    });
  });

  sumCases.forEach((c, i) => {
    test(`sum of [${c.shape}] over [${c.axis}]${c.keepDims ? ' keepDims' : ''}`, async () => {
      await selectBackend('wasm', { native: true });
      const got = sumOf(c, 50 + i);
      assert.deepEqual(got.shape, sums.get(i)!.shape);
      assertClose(got.data, sums.get(i)!.data, 'sum');
    });
  });

  elementwiseCases.forEach((c, i) => {
    test(`${c.name}: the same bits as the cpu backend, NaN, ±∞ and −0 included`, async () => {
      await selectBackend('wasm', { native: true });
      const got = elementwise(c, 80 + i);
      const want = elementwiseResults.get(i)!;
      assert.deepEqual(got.shape, want.shape);
      const differs = want.data.findIndex((v, k) => !Object.is(v, got.data[k]));
      assert.equal(differs, -1, `element ${differs}: native ${got.data[differs]}, cpu ${want.data[differs]}`);
    });
  });

  test('tensor count and wasm memory stay flat', async () => {
    await selectBackend('wasm', { native: true });
    poolGrad(poolCases[0], 1);
    const before = tf.memory();
    for (let i = 0; i < 3; i++) { poolGrad(poolCases[0], 1); sumOf(sumCases[0], 1); elementwise(elementwiseCases[3], 1); }
    assert.equal(tf.memory().numTensors, before.numTensors);
    assert.equal(tf.memory().numBytes, before.numBytes);
  });
});

/** The fused backward kernels' cases: [N, H, W, C] of y, and the pool that follows (none: NinReluBackprop). */
interface FusedCase { shape: [number, number, number, number]; pool?: { k: number; s: number; pad: 'valid' | 'same' }; specials: boolean }
const fusedCases: FusedCase[] = [
  { shape: [3, 22, 22, 96], pool: { k: 3, s: 2, pad: 'valid' }, specials: true }, // NiN's first pool; fewer images than the sum's blocks
  { shape: [40, 10, 10, 20], pool: { k: 3, s: 2, pad: 'valid' }, specials: false }, // more images than blocks, not a multiple: db compared
  { shape: [2, 9, 9, 5], pool: { k: 2, s: 2, pad: 'same' }, specials: true },
  { shape: [40, 6, 6, 7], specials: true },
  { shape: [40, 6, 6, 7], specials: false },
];

/** y (special values in it if the case says so), the pool's output and a random output gradient dy. */
function fusedInputs(c: FusedCase, seed: number): { y: tf.Tensor4D; pooled: tf.Tensor; dy: tf.Tensor; attrs: tf.NamedAttrMap } {
  const n = c.shape.reduce((a, b) => a * b, 1);
  const y = tf.tensor4d(c.specials ? specialValues(n, seed) : values(n, seed, 0.3), c.shape);
  const p = c.pool;
  const pooled = p ? tf.maxPool(y, p.k, p.s, p.pad) : y;
  const dy = tf.tensor(values(pooled.size, seed + 1), pooled.shape);
  return { y, pooled, dy, attrs: p ? { filterSize: [p.k, p.k], strides: [p.s, p.s], pad: p.pad } : {} };
}

/**
 * [dz, db]: with `fused`, the project's kernel; else the tfjs kernels it stands for,
 * MaxPoolGrad (if pooled), then dz = dx · step(y) and db = the sum of dz.
 */
function fusedBackward(c: FusedCase, seed: number, fused: boolean): Float32Array[] {
  return tf.tidy(() => {
    const { y, pooled, dy, attrs } = fusedInputs(c, seed);
    if (fused) {
      const out = tf.engine().runKernel(c.pool ? POOL_RELU_BACKPROP : RELU_BACKPROP, { dy, y }, attrs) as tf.Tensor[];
      return out.map((t) => t.dataSync() as Float32Array);
    }
    const dx = c.pool ? tf.engine().runKernel('MaxPoolGrad', { dy, input: y, output: pooled }, attrs) as tf.Tensor : dy;
    const dz = tf.mul(dx, tf.step(y));
    return [dz.dataSync() as Float32Array, tf.sum(dz, [0, 1, 2]).dataSync() as Float32Array];
  });
}

const firstDifference = (a: Float32Array, b: Float32Array) => a.findIndex((v, k) => !Object.is(v, b[k]));

describe('the fused backward kernels compute what the tfjs kernels they replace compute', { skip }, () => {
  const cpu = new Map<number, Float32Array[]>();
  before(async () => {
    await selectBackend('cpu');
    fusedCases.forEach((c, i) => cpu.set(i, fusedBackward(c, 120 + i, false)));
  });

  fusedCases.forEach((c, i) => {
    const name = c.pool ? `NinMaxPoolReluBackprop ${c.pool.k}/${c.pool.s} ${c.pool.pad}` : 'NinReluBackprop';
    test(`${name} on [${c.shape}]${c.specials ? ' (NaN, ±∞, −0 in y)' : ''}: dz has the cpu backend's bits, db its sums`, async () => {
      await selectBackend('wasm', { native: true });
      const [dz, db] = fusedBackward(c, 120 + i, true);
      const [wantDz, wantDb] = cpu.get(i)!;
      const k = firstDifference(dz, wantDz);
      assert.equal(k, -1, `dz[${k}]: fused ${dz[k]}, cpu ${wantDz[k]}`);
      assert.equal(db.length, c.shape[3]);
      if (!c.specials) assertClose(db, wantDb, 'db');
      else db.forEach((v, j) => assert.equal(Number.isNaN(v), Number.isNaN(wantDb[j]), `db[${j}]: fused ${v}, cpu ${wantDb[j]}`));
    });
  });

  test('NinMaxPoolReluBackprop: the same bits as the native MaxPoolGrad then NinReluBackprop (what it replaces in training)', async () => {
    await selectBackend('wasm', { native: true });
    const c = fusedCases[1];
    const [dz, db] = fusedBackward(c, 7, true);
    const [wantDz, wantDb] = tf.tidy(() => {
      const { y, pooled, dy, attrs } = fusedInputs(c, 7);
      const dx = tf.engine().runKernel('MaxPoolGrad', { dy, input: y, output: pooled }, attrs) as tf.Tensor;
      return (tf.engine().runKernel(RELU_BACKPROP, { dy: dx, y }, {}) as tf.Tensor[]).map((t) => t.dataSync() as Float32Array);
    });
    assert.equal(firstDifference(dz, wantDz), -1);
    assert.equal(firstDifference(db, wantDb), -1);
  });
});

/** Weights (a convolution's filters large enough for the native element-wise passes, a bias), five steps of gradients. */
function adamRun(make: () => tf.Optimizer, specials: boolean): Float32Array[] {
  const shapes = [[5, 5, 96, 16], [16], [3, 3, 16, 10]];
  const ws = tf.tidy(() => shapes.map((s, k) => tf.variable(tf.tensor(values(s.reduce((a, b) => a * b, 1), 300 + k), s), true, `adam-w${k}`)));
  const optimizer = make();
  const rates = [0.003, 0.0029, 0.0021, 0.0007, 0];
  rates.forEach((lr, step) => {
    (optimizer as tf.Optimizer & { setLearningRate(lr: number): void }).setLearningRate(lr);
    const grads = Object.fromEntries(ws.map((w, k) => {
      const n = w.size;
      const g = specials && step === 3 ? specialValues(n, 400 + k) : values(n, 400 + 10 * step + k).map((v) => v * 1e-3 * (k + 1));
      return [w.name, tf.tensor(g, w.shape)];
    }));
    optimizer.applyGradients(grads);
    tf.dispose(Object.values(grads));
  });
  const out = [...ws.map((w) => w.dataSync() as Float32Array)];
  return tf.tidy(() => {
    const moments = (optimizer as unknown as { accumulatedFirstMoment: { variable: tf.Variable }[]; accumulatedSecondMoment: { variable: tf.Variable }[] });
    const all = [...out, ...[...moments.accumulatedFirstMoment, ...moments.accumulatedSecondMoment].map((m) => m.variable.dataSync() as Float32Array)];
    optimizer.dispose();
    tf.dispose(ws);
    return all;
  });
}

/** tfjs's own Adam with the project's constants and a rate setter, for comparison. */
class StockAdam extends tf.AdamOptimizer {
  setLearningRate(lr: number): void { this.learningRate = lr; }
}

describe("Adam's one-pass kernel (NinAdamUpdate) gives tfjs's AdamOptimizer's bits", { skip }, () => {
  for (const specials of [false, true]) {
    test(`five steps, changing rates${specials ? ', one gradient with NaN, ±∞ and −0' : ''}: weights and both moments`, async () => {
      await selectBackend('wasm', { native: true });
      assert.ok(tf.getKernel(ADAM_UPDATE, 'wasm'), 'the native kernel is registered');
      const before = tf.memory().numTensors;
      const ours = adamRun(() => makeOptimizer({ optimizer: 'adam', lr: 0.003, momentum: 0 }), specials);
      const stock = adamRun(() => new StockAdam(0.003, ADAM.beta1, ADAM.beta2, ADAM.epsilon), specials);
      assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      assert.equal(ours.length, 9);
      ours.forEach((a, i) => {
        const k = firstDifference(a, stock[i]);
        assert.equal(k, -1, `tensor ${i}, element ${k}: kernel ${a[k]}, tfjs ${stock[i][k]}`);
      });
    });
  }
});
