/**
 * The wasm convolution kernels against tfjs's reference `cpu` backend, twice: the kernels
 * composed from wasm's own XNNPACK ops (lib/kernels/wasmConvGrad.ts), and the native ones
 * (lib/kernels/native.ts) that replace them when built. Where the addon runs its convolutions
 * on oneDNN, this file runs again in child processes on its OpenBLAS path
 * (NIN_NATIVE_CONV=blas) and on oneDNN without Winograd (dnnl-direct: neither oneDNN's for
 * 3x3 nor native/nin_wino5.c's for 5x5), so every path is checked. The native variant is
 * skipped only when the addon is not built, unless NIN_REQUIRE_NATIVE=1 (CI), which makes that
 * a failure (test/optional.ts).
 * Gradients are taken through the real autodiff path (tf.grads of conv2d and of the fused
 * conv2d+bias+relu that tfjs-layers uses), so both new kernels run exactly as in training.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../lib/kernels/backend';
import { mulberry32 } from '../../lib/core/random';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { nativeConvLibrary } from '../../lib/kernels/native';
import { skipUnless } from '../optional';

/** tfjs's padding names, or explicit zero padding on every side. */
type Pad = 'valid' | 'same' | number;
interface Case { k: number; stride: number; pad: Pad; ci: number; co: number; size: number; batch: number }

function randomArray(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

/** Inputs are made as plain arrays so that both backends see identical numbers. */
function inputsFor(c: Case, seed: number) {
  const xShape: [number, number, number, number] = [c.batch, c.size, c.size, c.ci];
  const wShape: [number, number, number, number] = [c.k, c.k, c.ci, c.co];
  const padded = c.size + 2 * (typeof c.pad === 'number' ? c.pad : 0);
  const outSize = c.pad === 'same' ? Math.ceil(c.size / c.stride) : Math.floor((padded - c.k) / c.stride) + 1;
  const dyShape: [number, number, number, number] = [c.batch, outSize, outSize, c.co];
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  return {
    xShape, wShape, dyShape,
    x: randomArray(size(xShape), seed), w: randomArray(size(wShape), seed + 1),
    dy: randomArray(size(dyShape), seed + 2), bias: randomArray(c.co, seed + 3),
  };
}

/** [y, dx, dw] (and d bias when fused) of y = conv(x, w), loss sum(y * dy), on the active backend. */
function gradients(c: Case, fused: boolean, seed: number): Float32Array[] {
  const v = inputsFor(c, seed);
  return tf.tidy(() => {
    const x = tf.tensor4d(v.x, v.xShape);
    const w = tf.tensor4d(v.w, v.wShape);
    const b = tf.tensor1d(v.bias);
    const dy = tf.tensor4d(v.dy, v.dyShape);
    const forward = (xx: tf.Tensor, ww: tf.Tensor, bb?: tf.Tensor) => fused
      ? tf.fused.conv2d({
        x: xx as tf.Tensor4D, filter: ww as tf.Tensor4D, bias: bb, strides: c.stride, pad: c.pad, activation: 'relu',
      })
      : tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad);
    const f = (xx: tf.Tensor, ww: tf.Tensor, bb?: tf.Tensor) => tf.sum(tf.mul(forward(xx, ww, bb), dy));
    const grads = fused ? tf.grads(f)([x, w, b]) : tf.grads(f as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor)([x, w]);
    return [forward(x, w, b), ...grads].map((g) => g.dataSync() as Float32Array);
  });
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 1e-6;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  assert.ok(worst <= 1e-4 * scale + 1e-5, `${what}: max |wasm - cpu| = ${worst} (scale ${scale})`);
}

const cases: Case[] = [];
for (const k of [1, 3, 5, 11]) {
  for (const stride of [1, 2, 4]) {
    for (const pad of ['valid', 'same'] as Pad[]) {
      for (const [ci, co] of [[1, 4], [3, 8], [8, 5]]) {
        cases.push({ k, stride, pad, ci, co, size: k === 11 ? 23 : 13, batch: 2 });
      }
    }
  }
}

// 3x3 stride-1 layers with channels in multiples of 16: where oneDNN has Winograd (AVX-512), the
// native path runs them with it (other rounding); NiN's third block at 96 px is the last one.
cases.push({ k: 3, stride: 1, pad: 'same', ci: 32, co: 48, size: 9, batch: 2 });
cases.push({ k: 3, stride: 1, pad: 'valid', ci: 16, co: 16, size: 12, batch: 3 });
cases.push({ k: 3, stride: 1, pad: 'same', ci: 256, co: 384, size: 4, batch: 4 });
// 5x5 stride-1 layers where native/nin_wino5.c's F(2x2, 5x5) pays (at least 32 channels each
// way, 48x48 in all; outputs of 4x4 or more with their 2x2 tiles 3/4 full): the oneDNN path
// runs them with it on any CPU. Even and odd outputs (partial tiles), paddings 0, 1, 2 and 4
// (the most it takes: the input gradient pads by 4 - p), channel counts that fill no vector,
// NiN's second block at 96 px; and padding 5, which it leaves to oneDNN's direct convolution.
cases.push({ k: 5, stride: 1, pad: 'same', ci: 40, co: 65, size: 7, batch: 2 });
cases.push({ k: 5, stride: 1, pad: 'valid', ci: 33, co: 80, size: 12, batch: 2 });
cases.push({ k: 5, stride: 1, pad: 'same', ci: 96, co: 256, size: 10, batch: 2 });
cases.push({ k: 5, stride: 1, pad: 1, ci: 48, co: 48, size: 9, batch: 2 });
cases.push({ k: 5, stride: 1, pad: 4, ci: 48, co: 56, size: 5, batch: 2 });
cases.push({ k: 5, stride: 1, pad: 5, ci: 16, co: 16, size: 4, batch: 2 });

/** The native suite's skip (test/optional.ts): false when the addon is built; without it under NIN_REQUIRE_NATIVE=1, a failing test besides. */
const skipNative = skipUnless(['native'], undefined, 'the native convolution tests');

for (const native of [false, true]) describe(`wasm${native ? ' + native' : ''} convolutions and their gradients match the cpu backend`, { skip: native ? skipNative : false }, () => {
  const expected = new Map<string, Float32Array[]>();
  const name = (c: Case, fused: boolean) =>
    `k${c.k} s${c.stride} ${c.pad} ci${c.ci} co${c.co} ${c.size}px${fused ? ' fused+relu' : ''}`;

  before(async () => {
    await selectBackend('cpu');
    cases.forEach((c, i) => {
      for (const fused of [false, true]) expected.set(name(c, fused), gradients(c, fused, 100 + i));
    });
    const info = await selectBackend('wasm', { native });
    assert.equal(info.description.includes('native convolutions'), native);
  });

  cases.forEach((c, i) => {
    for (const fused of [false, true]) {
      test(name(c, fused), async () => {
        assert.equal(tf.getBackend(), 'wasm');
        await selectBackend('wasm', { native }); // the other suite may have switched kernels
        const got = gradients(c, fused, 100 + i);
        const want = expected.get(name(c, fused))!;
        const labels = ['y', 'dx', 'dw', 'dbias'];
        got.forEach((g, j) => assertClose(g, want[j], `${name(c, fused)} ${labels[j]}`));
      });
    }
  });

  if (native) {
    test('Winograd ran exactly where the path has it: oneDNN\'s for 3x3 (AVX-512), ours for 5x5, unless dnnl-direct', async () => {
      const library = nativeConvLibrary() ?? '';
      if (!library.startsWith('oneDNN')) return; // OpenBLAS: no Winograd at all
      const avx512 = fs.existsSync('/proc/cpuinfo') && /\bavx512f\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
      const limited = process.env.ONEDNN_MAX_CPU_ISA !== undefined && process.env.ONEDNN_MAX_CPU_ISA !== '';
      const allowed = process.env.NIN_NATIVE_CONV !== 'dnnl-direct';
      assert.equal(/jit_wino/.test(library), avx512 && !limited && allowed, `oneDNN ran: ${library}`);
      assert.equal(/wino5/.test(library), allowed, `oneDNN ran: ${library}`);
    });
  }

  test('the kernels free every intermediate (wasm memory and tensor count stay flat)', async () => {
    await selectBackend('wasm', { native });
    const c: Case = { k: 5, stride: 2, pad: 'same', ci: 3, co: 8, size: 13, batch: 2 };
    gradients(c, true, 7); // warm-up: first calls allocate the backend's caches
    const before = tf.memory();
    for (let i = 0; i < 5; i++) gradients(c, true, 7);
    const after = tf.memory();
    assert.equal(after.numTensors, before.numTensors);
    assert.equal(after.numBytes, before.numBytes);
    assert.equal((after as unknown as { numDataBuffers: number }).numDataBuffers,
      (before as unknown as { numDataBuffers: number }).numDataBuffers);
  });
});

// Where the addon runs on oneDNN, its other paths pass the same checks in a child process:
// OpenBLAS (NIN_NATIVE_CONV=blas), and oneDNN without Winograd (dnnl-direct), which is what
// runs the 3x3 cases on CPUs without AVX-512.
for (const path of ['blas', 'dnnl-direct']) {
  test(`where the addon runs on oneDNN, NIN_NATIVE_CONV=${path} passes the same checks (child process)`, {
    skip: skipNative !== false || process.env.NIN_NATIVE_CONV !== undefined ? 'no other path to check from here' :
      !nativeConvLibrary()?.startsWith('oneDNN') ? 'the addon was built without oneDNN' : false,
  }, () => {
    // Without NODE_TEST_CONTEXT the child reports in plain TAP instead of to this runner.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', __filename], {
      encoding: 'utf8', env: { ...env, NIN_NATIVE_CONV: path }, timeout: 10 * 60_000,
    });
    assert.equal(r.status, 0, r.stdout.slice(-3000) + r.stderr.slice(-2000));
    assert.match(r.stdout, /# fail 0/);
    assert.match(r.stdout, /native convolutions/);
  });
}
