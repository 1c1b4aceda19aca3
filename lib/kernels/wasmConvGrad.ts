/**
 * Convolution gradients for the `wasm` backend, built from its own fast kernels.
 *
 * Stock tfjs-backend-wasm 4.x has no `Conv2DBackpropFilter` kernel at all (so no convnet can
 * train on it), and its `Conv2DBackpropInput` is a plain loop about 10x slower than the
 * forward convolution. Both gradients are themselves convolutions (or, for 1x1 kernels,
 * matrix products), so we express them with the backend's XNNPACK-backed `Conv2D`
 * kernel plus a few layout changes (`Transpose`, `Reshape`, `PadV2`, `Reverse`).
 *
 * Layout is NHWC throughout, filters are [KH, KW, Ci, Co], as in tfjs.
 *
 * These are kernels, not ops: they take and return `TensorInfo`s and free every
 * intermediate they create with `backend.disposeData`, so the engine's tensor bookkeeping
 * sees exactly one new output per call.
 */
import {
  backend_util,
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  getKernel,
  KernelBackend,
  KernelFunc,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { KernelReplacement } from './registry';

const BACKEND = 'wasm';

/** Runs one registered wasm kernel by name. */
function run(backend: KernelBackend, name: string, inputs: NamedTensorInfoMap, attrs: object = {}): TensorInfo {
  const kernel = getKernel(name, BACKEND);
  if (kernel == null) throw new Error(`the wasm backend has no ${name} kernel`);
  return kernel.kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
}

/** Frees intermediates (a reshape shares its input's data; disposeData only drops a reference). */
function free(backend: KernelBackend, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

const reshape = (b: KernelBackend, x: TensorInfo, shape: number[]) => run(b, 'Reshape', { x }, { shape });
const transpose = (b: KernelBackend, x: TensorInfo, perm: number[]) => run(b, 'Transpose', { x }, { perm });

/**
 * Crops a 4-D result to `size` from the origin when it came out larger (Slice), else returns it.
 * Consumes `x`.
 */
function cropTo(b: KernelBackend, x: TensorInfo, size: number[]): TensorInfo {
  if (x.shape.every((d, i) => d === size[i])) return x;
  const out = run(b, 'Slice', { x }, { begin: [0, 0, 0, 0], size });
  free(b, x);
  return out;
}

/**
 * Inserts `s - 1` zeros after every row (and column) of dy: [N, OH, OW, C] → [N, OH*sh, OW*sw, C].
 * A strided convolution's input gradient is the stride-1 transposed convolution of this.
 */
function dilateRowsCols(b: KernelBackend, dy: TensorInfo, sh: number, sw: number): TensorInfo {
  const [n, oh, ow, c] = dy.shape;
  const split = reshape(b, dy, [n, oh, 1, ow, 1, c]); // [N, OH, 1, OW, 1, C]
  const padded = run(b, 'PadV2', { x: split }, {
    paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]],
    constantValue: 0,
  }); // [N, OH, sh, OW, sw, C]
  const out = reshape(b, padded, [n, oh * sh, ow * sw, c]);
  free(b, split, padded);
  return out;
}

/** Attributes of a plain 1×1, stride-1 convolution. */
const pointwiseAttrs = { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined };

function isPointwise(info: backend_util.Conv2DInfo): boolean {
  const p = info.padInfo;
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 &&
    info.strideWidth === 1 && p.top === 0 && p.bottom === 0 && p.left === 0 && p.right === 0;
}

function checkLayout(kernel: string, dataFormat: string, dilations?: number | [number, number]): void {
  if (dataFormat !== 'NHWC') throw new Error(`${kernel} on wasm supports NHWC only, got ${dataFormat}`);
  const d = dilations === undefined ? [1, 1] : typeof dilations === 'number' ? [dilations, dilations] : dilations;
  if (d[0] !== 1 || d[1] !== 1) throw new Error(`${kernel} on wasm supports dilation 1 only`);
}

/**
 * dW = ∂L/∂W for y = conv2d(x, W). x: [N, H, W, Ci], dy: [N, OH, OW, Co] → [KH, KW, Ci, Co].
 *
 * dW[kh, kw, ci, co] = Σ_{n, oh, ow} xpad[n, oh·sh + kh, ow·sw + kw, ci] · dy[n, oh, ow, co]
 *
 * Read with ci as the batch and n as the channel, that is a stride-1 convolution of x
 * (transposed to [Ci, H, W, N]) with dy as the filter (transposed to [OH, OW, N, Co]),
 * dilated by the forward stride. Its output [Ci, KH, KW, Co] is transposed back.
 * For 1×1 stride-1 kernels it is simply xᵀ·dy over all N·H·W positions.
 * (wasm's BatchMatMul with a transposed operand is far slower than its Conv2D, so even the
 * matrix products here are phrased as 1×1 convolutions.)
 */
export const conv2dBackpropFilter: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = b as KernelBackend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  checkLayout('Conv2DBackpropFilter', dataFormat);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;

  if (isPointwise(info)) {
    // xᵀ·dy as a 1×1 convolution with Ci as the batch and the N·H·W positions as channels;
    // dy needs no transpose to serve as the [1, 1, NHW, Co] filter.
    const x2 = reshape(backend, x, [n * h * w, ci]);
    const x2T = transpose(backend, x2, [1, 0]); // [Ci, NHW]
    const xT = reshape(backend, x2T, [ci, 1, 1, n * h * w]);
    const filter = reshape(backend, dy, [1, 1, n * oh * ow, co]);
    const prod = run(backend, 'Conv2D', { x: xT, filter }, pointwiseAttrs); // [Ci, 1, 1, Co]
    const out = reshape(backend, prod, [1, 1, ci, co]);
    free(backend, x2, x2T, xT, filter, prod);
    return out;
  }

  const xT = transpose(backend, x, [3, 1, 2, 0]); // [Ci, H, W, N]
  const dyT = transpose(backend, dy, [1, 2, 0, 3]); // [OH, OW, N, Co]
  // Pad x as the forward pass did at the top/left; at the bottom/right pad just enough for a
  // KH×KW result (a 'valid' forward pass may have ignored trailing rows: crop those instead).
  const { top, left } = info.padInfo;
  const bottom = kh + sh * (oh - 1) - h - top;
  const right = kw + sw * (ow - 1) - w - left;
  const conv = run(backend, 'Conv2D', { x: xT, filter: dyT }, {
    strides: [1, 1],
    pad: [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]],
    dataFormat: 'NHWC',
    dilations: [sh, sw],
    dimRoundingMode: undefined,
  }); // [Ci, KH(+), KW(+), Co]
  free(backend, xT, dyT);
  const cropped = cropTo(backend, conv, [ci, kh, kw, co]);
  const out = transpose(backend, cropped, [1, 2, 0, 3]); // [KH, KW, Ci, Co]
  free(backend, cropped);
  return out;
};

/** The stock wasm kernel, kept for the cases the fast path below does not cover. */
let stockBackpropInput: KernelFunc | undefined;

/**
 * dx = ∂L/∂x for y = conv2d(x, W). dy: [N, OH, OW, Co], W: [KH, KW, Ci, Co] → [N, H, W, Ci].
 *
 * dx is the full correlation of dy (zeros inserted between rows/columns when the forward
 * stride is > 1) with W rotated by 180° and its channel axes swapped ([KH, KW, Co, Ci]).
 * For 1×1 stride-1 kernels it is dy·Wᵀ.
 */
export const conv2dBackpropInput: KernelFunc = (args) => {
  const { inputs, attrs } = args;
  const backend = args.backend as KernelBackend;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
  checkLayout('Conv2DBackpropInput', dataFormat);
  const info = backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;

  if (isPointwise(info)) {
    // dy·Wᵀ: a 1×1 convolution with the (small) filter's channel axes swapped.
    const swapped = transpose(backend, filter, [0, 1, 3, 2]); // [1, 1, Co, Ci]
    const out = run(backend, 'Conv2D', { x: dy, filter: swapped }, pointwiseAttrs); // [N, H, W, Ci]
    free(backend, swapped);
    return out;
  }

  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  if (top < 0 || left < 0) {
    // Padding wider than the kernel (only possible with explicit pads): rare, use the stock loop.
    if (stockBackpropInput == null) throw new Error('Conv2DBackpropInput: stock wasm kernel not found');
    return stockBackpropInput(args);
  }
  const up = sh > 1 || sw > 1 ? dilateRowsCols(backend, dy, sh, sw) : dy; // [N, OH·sh, OW·sw, Co]
  const bottom = h + kh - 1 - top - up.shape[1];
  const right = w + kw - 1 - left - up.shape[2];
  const swapped = transpose(backend, filter, [0, 1, 3, 2]); // [KH, KW, Co, Ci]
  const rotated = run(backend, 'Reverse', { x: swapped }, { dims: [0, 1] });
  const conv = run(backend, 'Conv2D', { x: up, filter: rotated }, {
    strides: [1, 1],
    pad: [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]],
    dataFormat: 'NHWC',
    dilations: [1, 1],
    dimRoundingMode: undefined,
  }); // [N, H(+), W(+), Ci]
  free(backend, swapped, rotated);
  if (up !== dy) free(backend, up);
  return cropTo(backend, conv, [n, h, w, ci]);
};

/** The stock kernels this module replaced (wasm has a slow Conv2DBackpropInput and no Conv2DBackpropFilter). */
const gradients = new KernelReplacement(BACKEND);

/**
 * Registers the two gradient kernels on the wasm backend (idempotent). Call after the wasm
 * backend package has been loaded, before training.
 */
export function registerWasmConvGradients(): void {
  gradients.install({
    Conv2DBackpropFilter: () => conv2dBackpropFilter,
    Conv2DBackpropInput: (stock) => {
      stockBackpropInput = stock;
      return conv2dBackpropInput;
    },
  }, ['Conv2DBackpropFilter', 'Conv2DBackpropInput']);
}
