/**
 * The native MaxPoolGrad and Sum kernels (lib/kernels/native.ts) against the `cpu` backend.
 * The convolutions of the same addon are checked in wasmConvGrad.test.ts.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../lib/backend';
import { nativeAddonPath } from '../lib/kernels/native';
import { mulberry32 } from '../lib/random';

const built = fs.existsSync(nativeAddonPath());

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
  { shape: [9, 3], axis: [0], keepDims: false },
];

function sumOf(c: SumCase, seed: number): { shape: number[]; data: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor(values(c.shape.reduce((a, b) => a * b, 1), seed), c.shape);
    const y = tf.sum(x, c.axis, c.keepDims);
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

describe('native MaxPoolGrad and Sum match the cpu backend', { skip: built ? false : 'native addon not built' }, () => {
  const pools = new Map<number, Float32Array[]>();
  const sums = new Map<number, { shape: number[]; data: Float32Array }>();

  before(async () => {
    await selectBackend('cpu');
    poolCases.forEach((c, i) => pools.set(i, poolGrad(c, 10 + i)));
    sumCases.forEach((c, i) => sums.set(i, sumOf(c, 50 + i)));
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

  test('tensor count and wasm memory stay flat', async () => {
    await selectBackend('wasm', { native: true });
    poolGrad(poolCases[0], 1);
    const before = tf.memory();
    for (let i = 0; i < 3; i++) { poolGrad(poolCases[0], 1); sumOf(sumCases[0], 1); }
    assert.equal(tf.memory().numTensors, before.numTensors);
    assert.equal(tf.memory().numBytes, before.numBytes);
  });
});
