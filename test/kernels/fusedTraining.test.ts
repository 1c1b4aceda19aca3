/**
 * lib/kernels/fusedTraining.ts: a training forward pass with each ReLU convolution fused (FusedConv2D
 * forward, NinReluBackprop backward, or NinMaxPoolReluBackprop with the max-pool after it) gives model.apply's loss and gradients, runs the kernels
 * it claims to, skips the images' gradient, lets NaN reach the gradients, and leaks no tensors. Without
 * the native kernels it is model.apply itself.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../../lib/kernels/backend';
import { fusedTrainingAvailable, trainingForward } from '../../lib/kernels/fusedTraining';
import { nin } from '../../lib/core/model';
import { crossEntropy } from '../../lib/training/loop';
import { mulberry32 } from '../../lib/core/random';
import { skipUnless } from '../optional';

/** Skipped without the addon, or failing in its place under NIN_REQUIRE_NATIVE=1. */
const skip = skipUnless(['native'], undefined, 'the fused training tests');

function images(n: number, size: number, seed: number): tf.Tensor4D {
  const r = mulberry32(seed);
  return tf.tensor4d(Float32Array.from({ length: n * size * size }, () => r()), [n, size, size, 1]);
}

/** Loss and gradients of one forward pass (`fused`: trainingForward, else model.apply), dropout seeded alike. */
function lossAndGrads(model: tfl.LayersModel, x: tf.Tensor4D, ys: tf.Tensor1D, fused: boolean): { loss: number; grads: Map<string, Float32Array> } {
  const dropouts = model.layers.filter((l) => l.getClassName() === 'Dropout') as unknown as { seed?: number }[];
  dropouts.forEach((l) => { l.seed = 7; });
  try {
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const logits = fused ? trainingForward(model, x) : model.apply(x, { training: true }) as tf.Tensor;
      return crossEntropy(logits as tf.Tensor2D, ys);
    }, variables);
    const result = { loss: value.dataSync()[0], grads: new Map(Object.entries(grads).map(([k, g]) => [k, g.dataSync() as Float32Array])) };
    tf.dispose([value, ...Object.values(grads)]);
    return result;
  } finally {
    dropouts.forEach((l) => { l.seed = undefined; });
  }
}

/** Each gradient within 1e-5 of its largest element (oneDNN may add the bias in another order). */
function assertSameGradients(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, ga] of a) {
    const gb = b.get(name)!;
    const scale = ga.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const worst = ga.reduce((m, v, i) => Math.max(m, Math.abs(v - gb[i])), 0);
    assert.ok(worst <= 1e-5 * scale, `${name}: fused and unfused gradients differ by ${worst} (largest ${scale})`);
  }
}

/** A small sequential model with layers trainingForward must fuse and layers it must not. */
function mixedModel(): tfl.Sequential {
  const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
  return tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [12, 12, 1], filters: 6, kernelSize: 3, activation: 'relu', kernelInitializer: init(1), biasInitializer: 'ones' }),
    tfl.layers.conv2d({ filters: 5, kernelSize: 1, activation: 'linear', kernelInitializer: init(2) }), // not ReLU
    tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, activation: 'relu', kernelInitializer: init(3) }), // no bias
    tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(4), biasInitializer: 'ones' }),
    tfl.layers.maxPooling2d({ poolSize: 2 }),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 10, kernelInitializer: init(5) }),
  ] });
}

describe('fused training with the native kernels', { skip }, () => {
  test('NiN: the loss and every gradient of model.apply', async () => {
    await selectBackend('wasm', { native: true });
    assert.ok(fusedTrainingAvailable());
    const model = nin({ inputSize: 67, seed: 3, classBlockBias: 0.1 });
    const x = images(8, 67, 1);
    const ys = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
    const fused = lossAndGrads(model, x, ys, true);
    const plain = lossAndGrads(model, x, ys, false);
    assert.ok(Math.abs(fused.loss - plain.loss) <= 1e-6 * plain.loss, `loss ${fused.loss} vs ${plain.loss}`);
    assertSameGradients(fused.grads, plain.grads);
    tf.dispose([x, ys]);
    model.dispose();
  });

  test('layers that are not ReLU convolutions with a bias run as they are', async () => {
    await selectBackend('wasm', { native: true });
    const model = mixedModel();
    const x = images(4, 12, 2);
    const ys = tf.tensor1d([1, 3, 5, 7], 'int32');
    const fused = lossAndGrads(model, x, ys, true);
    const plain = lossAndGrads(model, x, ys, false);
    assert.ok(Math.abs(fused.loss - plain.loss) <= 1e-6 * plain.loss);
    assertSameGradients(fused.grads, plain.grads);
    tf.dispose([x, ys]);
    model.dispose();
  });

  test('runs fused kernels, and no gradient for the images', async () => {
    await selectBackend('wasm', { native: true });
    const model = nin({ inputSize: 67, seed: 1 });
    const x = images(4, 67, 3);
    const ys = tf.tensor1d([0, 1, 2, 3], 'int32');
    const profile = await tf.profile(() => { lossAndGrads(model, x, ys, true); });
    const count = (name: string) => profile.kernels.filter((k) => k.name === name).length;
    assert.equal(count('FusedConv2D'), 12); // four blocks of three convolutions
    assert.equal(count('NinReluBackprop'), 9); // the last convolution of blocks 1-3 joins its max-pool:
    assert.equal(count('NinMaxPoolReluBackprop'), 3);
    assert.equal(count('MaxPoolGrad'), 0);
    assert.equal(count('Relu') + count('Step'), 0);
    const imageGrads = profile.kernels.filter((k) => k.name === 'Conv2DBackpropInput' && k.outputShapes[0]?.join() === x.shape.join());
    assert.equal(imageGrads.length, 0);
    assert.equal(count('Conv2DBackpropInput'), 11);
    tf.dispose([x, ys]);
    model.dispose();
  });

  test('a NaN weight shows in the gradients, fused or not (the health check stops the run on it)', async () => {
    await selectBackend('wasm', { native: true });
    const model = nin({ inputSize: 67, seed: 2, classBlockBias: 0.1 });
    const conv = model.getLayer('block2_conv1');
    const [w, b] = conv.getWeights();
    const poisoned = tf.tidy(() => tf.where(tf.equal(tf.range(0, w.size).reshape(w.shape), 5), tf.scalar(NaN), w));
    conv.setWeights([poisoned, b]);
    const x = images(4, 67, 4);
    const ys = tf.tensor1d([0, 1, 2, 3], 'int32');
    for (const fused of [true, false]) {
      const { grads } = lossAndGrads(model, x, ys, fused);
      const nanGrads = [...grads.values()].filter((g) => g.some((v) => Number.isNaN(v))).length;
      assert.ok(nanGrads > 0, `${fused ? 'fused' : 'model.apply'}: no NaN gradient`);
    }
    tf.dispose([poisoned, x, ys]);
    model.dispose();
  });

  test('tensor count stays flat', async () => {
    await selectBackend('wasm', { native: true });
    const model = nin({ inputSize: 67, seed: 1 });
    const x = images(2, 67, 5);
    const ys = tf.tensor1d([0, 1], 'int32');
    lossAndGrads(model, x, ys, true);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) lossAndGrads(model, x, ys, true);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, ys]);
    model.dispose();
  });
});

test('without the native kernels, trainingForward is model.apply', async () => {
  await selectBackend('cpu');
  assert.equal(fusedTrainingAvailable(), false);
  const model = mixedModel();
  const x = images(2, 12, 6);
  const ys = tf.tensor1d([2, 4], 'int32');
  const fused = lossAndGrads(model, x, ys, true);
  const plain = lossAndGrads(model, x, ys, false);
  assert.equal(fused.loss, plain.loss);
  for (const [name, g] of fused.grads) assert.deepEqual(g, plain.grads.get(name), name);
  tf.dispose([x, ys]);
  model.dispose();
});
