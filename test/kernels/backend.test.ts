/**
 * Backend selection: explicit choices, `auto`'s fall-through with its reasons, $NIN_BACKEND,
 * errors that say what to do, and the wasm convolution gradients being registered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_CHOICES, selectBackend } from '../../lib/kernels/backend';
import { ConfigError } from '../../lib/core/validate';
import * as fs from 'node:fs';
import { nativeAddonPath } from '../../lib/kernels/native';

/** Without the optional native addon (no OpenBLAS when npm ci ran), wasm says why it runs alone. */
const addonBuilt = fs.existsSync(nativeAddonPath());
const nativeNote = addonBuilt ? [] : [/^native convolutions unavailable \(/];
const assertSkipped = (skipped: string[], expected: string[]) => {
  assert.deepEqual(skipped.slice(0, expected.length), expected);
  assert.equal(skipped.length, expected.length + nativeNote.length, skipped.join('; '));
  nativeNote.forEach((pattern, i) => assert.match(skipped[expected.length + i], pattern));
};

/** Whether `pkg` can be resolved from the project (the native tfjs packages are optional). */
function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

const NATIVE = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];
const nativeInstalled = NATIVE.some(installed);

/** Sets NIN_BACKEND for one test and restores it afterwards. */
function withBackendEnv(t: { after: (fn: () => void) => void }, value: string | undefined): void {
  const saved = process.env.NIN_BACKEND;
  t.after(() => {
    if (saved === undefined) delete process.env.NIN_BACKEND;
    else process.env.NIN_BACKEND = saved;
  });
  if (value === undefined) delete process.env.NIN_BACKEND;
  else process.env.NIN_BACKEND = value;
}

test('cpu: plain JavaScript', async () => {
  const info = await selectBackend('cpu');
  assert.equal(info.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.match(info.description, /^cpu/);
  assert.deepEqual(info.skipped, []);
});

test('wasm: XNNPACK, and the active backend', async () => {
  const info = await selectBackend('wasm');
  assert.equal(info.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.match(info.description, /^wasm \(XNNPACK\b.*\d+ threads?\)( \+ native convolutions \((oneDNN \+ )?OpenBLAS, \d+ threads?( \(OpenBLAS: \d+\))?\))?$/);
  assert.equal(info.description.includes('native convolutions'), addonBuilt, 'the native kernels are on exactly when built');
  assertSkipped(info.skipped, []);
});

test('auto without the native packages: wasm, saying why each native one was skipped', async (t) => {
  if (nativeInstalled) {
    t.skip('a native @tensorflow/tfjs-node package is installed here');
    return;
  }
  await selectBackend('cpu'); // so that landing on wasm is auto's doing
  const info = await selectBackend('auto');
  assert.equal(info.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assertSkipped(info.skipped, [
    '@tensorflow/tfjs-node-gpu: not installed',
    '@tensorflow/tfjs-node: not installed',
  ]);
});

test('with no argument, $NIN_BACKEND decides', async (t) => {
  withBackendEnv(t, 'cpu');
  await selectBackend('wasm');
  const info = await selectBackend();
  assert.equal(info.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');

  process.env.NIN_BACKEND = 'wasm';
  assert.equal((await selectBackend()).name, 'wasm');
  // An explicit argument wins over the environment.
  process.env.NIN_BACKEND = 'wasm';
  assert.equal((await selectBackend('cpu')).name, 'cpu');

  process.env.NIN_BACKEND = 'gpu-please';
  await assert.rejects(selectBackend(), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /"gpu-please"/);
    return true;
  });
});

test('an unknown backend is a ConfigError listing the choices', async () => {
  assert.deepEqual([...BACKEND_CHOICES], ['auto', 'tensorflow', 'wasm', 'cpu']);
  await assert.rejects(selectBackend('webgpu'), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.message, 'backend must be one of auto, tensorflow, wasm, cpu, got "webgpu"');
    return true;
  });
});

test('tensorflow when not installed: a ConfigError saying how to install it', async (t) => {
  if (nativeInstalled) {
    t.skip('a native @tensorflow/tfjs-node package is installed here');
    return;
  }
  await selectBackend('wasm');
  await assert.rejects(selectBackend('tensorflow'), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.match(err.message, /^backend tensorflow is not available/);
    assert.match(err.message, /@tensorflow\/tfjs-node-gpu: not installed; @tensorflow\/tfjs-node: not installed/);
    assert.match(err.message, /install @tensorflow\/tfjs-node-gpu \(CUDA\) or @tensorflow\/tfjs-node/);
    // The field in each front end's words: the library's `backend`, the command line's --backend.
    assert.match(err.message, /, or use backend wasm$/);
    assert.doesNotMatch(err.message, /--|\n/);
    assert.equal(err.field, 'backend');
    assert.match(err.messageFor({ backend: '--backend' }), /^--backend tensorflow is not available .*, or use --backend wasm$/);
    return true;
  });
  assert.equal(tf.getBackend(), 'wasm', 'a failed choice leaves the active backend alone');
});

test('NIN_BACKEND=tensorflow when not installed: the message names the variable, never the flag', async (t) => {
  if (nativeInstalled) {
    t.skip('a native @tensorflow/tfjs-node package is installed here');
    return;
  }
  withBackendEnv(t, 'tensorflow');
  await assert.rejects(selectBackend(), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    const line = err.messageFor({ backend: '--backend' });
    assert.match(line, /^NIN_BACKEND=tensorflow is not available \(.*\); install .*, or set NIN_BACKEND=wasm$/);
    assert.doesNotMatch(line, /--backend/);
    return true;
  });
});

test('NIN_BACKEND and NIN_NATIVE are checked strictly (empty: unset), named as themselves', async (t) => {
  withBackendEnv(t, '');
  const saved = process.env.NIN_NATIVE;
  t.after(() => { if (saved === undefined) delete process.env.NIN_NATIVE; else process.env.NIN_NATIVE = saved; });
  process.env.NIN_NATIVE = 'false'; // once taken for "on"
  await assert.rejects(selectBackend('wasm'), (err: unknown) =>
    err instanceof ConfigError && err.messageFor({ backend: '--backend' }) === 'NIN_NATIVE must be 0 or 1, got "false"');
  process.env.NIN_NATIVE = '0';
  assert.doesNotMatch((await selectBackend('wasm')).description, /native/);
  process.env.NIN_NATIVE = '';
  assert.equal((await selectBackend()).name === 'wasm' || nativeInstalled, true, 'empty NIN_BACKEND is auto');
  process.env.NIN_BACKEND = 'Wasm';
  await assert.rejects(selectBackend(), (err: unknown) => err instanceof ConfigError &&
    err.messageFor({ backend: '--backend' }) === 'NIN_BACKEND must be one of auto, tensorflow, wasm, cpu, got "Wasm"');
});

test('after selecting wasm its convolution gradients are registered and work', async () => {
  await selectBackend('wasm');
  for (const kernel of ['Conv2DBackpropFilter', 'Conv2DBackpropInput']) {
    assert.ok(tf.getKernel(kernel, 'wasm'), `${kernel} is registered for wasm`);
  }
  // d/dw of sum(conv2d(x, w)) for x all ones (1×3×3×1) and a 2×2 filter, 'valid': each filter
  // tap sees a one at each of the 2×2 output positions, so every entry of the gradient is 4;
  // d/dx[i][j] sums the filter taps that pixel (i, j) meets: for w = [[0.5, -1], [2, 0.25]]
  // that is [[0.5, -0.5, -1], [2.5, 1.75, -0.75], [2, 2.25, 0.25]].
  const start = tf.memory().numTensors;
  const [dx, dw] = tf.tidy(() => {
    const x = tf.ones([1, 3, 3, 1]) as tf.Tensor4D;
    const w = tf.tensor4d([0.5, -1, 2, 0.25], [2, 2, 1, 1]);
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'valid'));
    return tf.grads(f)([x, w]).map((g) => Array.from(g.dataSync()));
  });
  assert.deepEqual(dw, [4, 4, 4, 4]);
  assert.deepEqual(dx, [0.5, -0.5, -1, 2.5, 1.75, -0.75, 2, 2.25, 0.25]);
  assert.equal(tf.memory().numTensors, start);
});
