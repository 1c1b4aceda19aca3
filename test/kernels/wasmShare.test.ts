/**
 * lib/kernels/wasmShare.ts: wasm's Identity and same-type Cast share their input's memory,
 * every value stays what it was, and a training step is bit-identical to one with the stock
 * copying kernels.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../lib/kernels/backend';
import { registerWasmSharing, unregisterWasmSharing } from '../../lib/kernels/wasmShare';
import { nin } from '../../lib/core/model';
import { sgdStep } from '../../lib/training/loop';

/** Buffers the wasm backend holds now (a shared buffer counts once). */
const buffers = () => tf.engine().backend.numDataIds();

describe('wasm Identity and Cast share memory', () => {
  before(async () => { await selectBackend('wasm'); });
  after(() => { registerWasmSharing(); });

  test('a clone is the same buffer; either can be disposed first', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const before = buffers();
    const y = tf.clone(x);
    assert.equal(buffers(), before, 'a clone made a new buffer');
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
    y.dispose();
    assert.equal(buffers(), before - 1, 'the shared buffer was not freed with its last tensor');
  });

  test('a cast to the same type shares; to another type it converts', () => {
    const x = tf.tensor1d([1.5, -2, 3]);
    const before = buffers();
    const same = tf.cast(x, 'float32');
    assert.equal(buffers(), before);
    const ints = tf.cast(x, 'int32');
    assert.equal(buffers(), before + 1);
    assert.equal(ints.dtype, 'int32');
    assert.deepEqual(Array.from(ints.dataSync()), [1, -2, 3]);
    const bools = tf.tensor1d([0, 1, 1], 'bool');
    const back = tf.cast(bools, 'float32');
    assert.deepEqual(Array.from(back.dataSync()), [0, 1, 1]);
    tf.dispose([x, same, ints, bools, back]);
    assert.equal(buffers(), before - 1);
  });

  test('strings are still copied (they live outside the wasm heap)', () => {
    const s = tf.tensor1d(['a', 'b'], 'string');
    const c = tf.clone(s);
    s.dispose();
    assert.deepEqual(c.dataSync(), ['a', 'b']);
    c.dispose();
  });

  test('a training step is bit-identical with copying kernels, and leaves no buffer behind', () => {
    const step = (): { loss: number; weights: Float32Array[] } => {
      const model = nin({ inputSize: 67, seed: 3, dropout: 0 });
      const optimizer = tf.train.sgd(0.05);
      const xs = tf.randomUniform([4, 67, 67, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
      const ys = tf.tensor1d([0, 1, 2, 3], 'int32');
      const { loss } = sgdStep(model, optimizer, xs, ys, 4);
      const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
      tf.dispose([xs, ys]);
      optimizer.dispose();
      model.dispose();
      return { loss, weights };
    };
    step(); // warm-up: tfjs-layers caches a few tensors the first time
    const before = buffers();
    const shared = step();
    assert.equal(buffers(), before, 'buffers left behind by a training step');
    unregisterWasmSharing();
    const copied = step();
    registerWasmSharing();
    assert.equal(shared.loss, copied.loss);
    shared.weights.forEach((w, i) => assert.deepEqual(w, copied.weights[i], `weight ${i} differs`));
  });
});
