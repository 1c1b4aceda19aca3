/** KernelReplacement (lib/kernels/registry.ts): swapping a backend's kernels and putting them back. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getKernel, KernelFunc, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import { KernelReplacement } from '../../lib/kernels/registry';

const BACKEND = 'registry-test'; // no such backend runs: only the registry is used
const stock: KernelFunc = () => ({ dataId: {}, shape: [], dtype: 'float32' });
const setupFunc = () => {};
const disposeFunc = () => {};

test('a replacement keeps the stock kernel\'s setup and dispose, passes the stock kernel on, and restores it whole', () => {
  registerKernel({ kernelName: 'Stocked', backendName: BACKEND, kernelFunc: stock, setupFunc, disposeFunc });
  const swap = new KernelReplacement(BACKEND);
  let given: KernelFunc | undefined;
  const mine: KernelFunc = () => ({ dataId: {}, shape: [1], dtype: 'float32' });
  swap.install({ Stocked: (previous) => { given = previous; return mine; }, Missing: () => mine }, ['Missing']);
  try {
    assert.equal(given, stock);
    const now = getKernel('Stocked', BACKEND)!;
    assert.equal(now.kernelFunc, mine);
    // wasm's kernels bind their wasm functions in setupFunc, which the engine runs when the
    // backend starts: the stock kernel must still work as a fallback after the swap.
    assert.equal(now.setupFunc, setupFunc);
    assert.equal(now.disposeFunc, disposeFunc);
    assert.equal(swap.original('Stocked'), stock);
    assert.throws(() => swap.original('Missing'), /no stock Missing kernel/);
    assert.equal(getKernel('Missing', BACKEND)!.kernelFunc, mine);
  } finally {
    swap.restore();
  }
  const back = getKernel('Stocked', BACKEND)!;
  assert.deepEqual([back.kernelFunc, back.setupFunc, back.disposeFunc], [stock, setupFunc, disposeFunc]);
  assert.equal(getKernel('Missing', BACKEND), undefined);
  assert.equal(swap.active, false);
  unregisterKernel('Stocked', BACKEND);
});

test('installing twice is a no-op; a kernel the backend lacks is an error unless optional', () => {
  const swap = new KernelReplacement(BACKEND);
  assert.throws(() => swap.install({ Absent: () => stock }), /the registry-test backend has no Absent kernel to replace/);
  registerKernel({ kernelName: 'Twice', backendName: BACKEND, kernelFunc: stock });
  let calls = 0;
  const make = () => { calls++; return stock; };
  swap.install({ Twice: make });
  swap.install({ Twice: make });
  assert.equal(calls, 1);
  swap.restore();
  unregisterKernel('Twice', BACKEND);
});
