/**
 * `Identity` and same-type `Cast` for the `wasm` backend that share their input's memory
 * instead of copying it.
 *
 * Tensors are immutable, so a copy that nobody writes to is the same tensor. tfjs's `cpu`
 * backend (and wasm's own `Reshape`) already share: they add a reference to the input's data
 * and hand it back. The wasm `Identity` and `Cast` copy every byte instead, and training calls
 * them a lot: the autodiff engine `clone`s every tensor a gradient will need (each
 * convolution's input, each ReLU's input, …), and the ReLU gradient casts a float32 mask to
 * float32. For NiN that was 80 copies per training step, about 4% of its time and a second
 * copy of every activation kept for the backward pass.
 *
 * A cast between different types still converts (the stock kernel). Nothing here changes a
 * value, so training gives bit-identical results with and without it.
 */
import { CastAttrs, KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';
import { KernelReplacement } from './registry';

const BACKEND = 'wasm';

/** The same data under a new reference: disposing either tensor leaves the other intact. */
function share(backend: KernelBackend, x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** The kernels this module replaced, to put back (kept for tests and comparisons). */
const sharing = new KernelReplacement(BACKEND);

/**
 * Registers the sharing `Identity` and `Cast` on the wasm backend (idempotent). Call after the
 * wasm backend package has been loaded.
 */
export function registerWasmSharing(): void {
  sharing.install({
    Identity: (copy) => (args) => {
      const x = args.inputs.x as TensorInfo;
      return x.dtype === 'string' ? copy!(args) : share(args.backend as KernelBackend, x);
    },
    Cast: (convert) => (args) => {
      const x = args.inputs.x as TensorInfo;
      const { dtype } = args.attrs as unknown as CastAttrs;
      return x.dtype === dtype && dtype !== 'string' ? share(args.backend as KernelBackend, x) : convert!(args);
    },
  });
}

/** Puts the copying kernels back. */
export function unregisterWasmSharing(): void {
  sharing.restore();
}
