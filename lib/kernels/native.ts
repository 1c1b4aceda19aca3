/**
 * Native kernels for the wasm backend (native/nin_conv.c on OpenBLAS, and native/nin_dnnl.c on
 * oneDNN where libdnnl-dev is installed; all cores).
 *
 * Without libtensorflow, the wasm backend is the fastest tfjs backend, but it runs on one
 * thread with 128-bit SIMD. Convolutions are ~90% of NiN's training time; this module moves
 * `Conv2D`, `FusedConv2D` (bias + relu/linear) and both convolution gradients to a small
 * N-API addon that multiplies matrices with OpenBLAS, working directly on the wasm heap (no
 * copies). The memory-bound passes between them come along, on every core: `MaxPool`, `MaxPoolGrad`,
 * `Sum` over leading axes (bias gradients), and the bias, ReLU and ReLU-gradient passes that
 * tfjs runs unfused while it trains (`Add`, `Relu`, `Step`, `Multiply` on large float32
 * tensors). Everything else stays on wasm's XNNPACK kernels.
 *
 * The addon is optional: it is built at `npm ci` when a compiler and OpenBLAS are present.
 * Cases it does not handle (NCHW, dilation, other activations, other reductions) go to the
 * kernel it replaced.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  backend_util,
  Conv2DAttrs,
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  FusedConv2DAttrs,
  MaxPoolAttrs,
  MaxPoolGradAttrs,
  StepAttrs,
  SumAttrs,
  util,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { KernelReplacement } from './registry';
import { POOL_RELU_BACKPROP, RELU_BACKPROP } from './kernelNames';
import { ADAM_UPDATE, AdamUpdateAttrs } from '../core/optimizers';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { packageRoot } from '../storage/paths';
import { Env, envChoice, envInt, errorSummary, positiveInt } from '../core/validate';

interface Addon {
  conv2d(memory: ArrayBuffer, params: Float64Array): void;
  conv2dBackpropInput(memory: ArrayBuffer, params: Float64Array): void;
  conv2dBackpropFilter(memory: ArrayBuffer, params: Float64Array): void;
  maxPoolGrad(memory: ArrayBuffer, params: Float64Array): void;
  /** Older builds lack it. */
  maxPool?(memory: ArrayBuffer, params: Float64Array): void;
  sumRows(memory: ArrayBuffer, params: Float64Array): void;
  /** dz = dy · step(y) and db = column sums of dz, in one pass (older builds lack it). */
  reluBackprop?(memory: ArrayBuffer, params: Float64Array): void;
  /** The same after a max-pool: dz = maxPoolGrad(dy) · step(y), db as above (older builds lack it). */
  poolReluBackprop?(memory: ArrayBuffer, params: Float64Array): void;
  /** One Adam step of a weight tensor (older builds lack it). */
  adam?(memory: ArrayBuffer, params: Float64Array): void;
  /** Relu or Step on every element (older builds lack it). */
  unary?(memory: ArrayBuffer, params: Float64Array): void;
  /** Add or Multiply, the second operand the same shape or broadcast along the last axis (older builds lack it). */
  binary?(memory: ArrayBuffer, params: Float64Array): void;
  /** Sets OpenBLAS's thread count when given; returns the count in force. */
  threads(n?: number): number;
  /** Sets OpenMP's thread count (oneDNN and the addon's own loops) when given; returns the count in force. Older builds lack it. */
  ompThreads?(n?: number): number;
  /**
   * What runs the convolutions: `OpenBLAS`, or `oneDNN (…)` with the implementations used so
   * far (oneDNN's, and `wino5:F(2x2,5x5)` where native/nin_wino5.c ran; built with
   * libdnnl-dev; NIN_NATIVE_CONV=blas picks OpenBLAS, dnnl-direct oneDNN without Winograd).
   * Older builds lack it.
   */
  library?(): string;
  /** OpenBLAS's sgemm rate on n×n matrices, all threads, best of `reps` (GFLOP/s). Older builds lack it. */
  sgemmGflops?(n?: number, reps?: number): number;
}

/**
 * The machine's own single-precision matrix-product rate, measured now: OpenBLAS's sgemm on
 * 2048×2048 matrices with every thread (GFLOP/s); undefined without the native addon.
 */
export function sgemmGflops(n = 2048, reps = 3): number | undefined {
  return loadAddon()?.sgemmGflops?.(n, reps);
}

/** `oneDNN` or `OpenBLAS`: the library the addon's convolutions run on. */
export function nativeConvLibrary(): string | undefined {
  const lib = loadAddon();
  return lib ? (lib.library?.() ?? 'OpenBLAS') : undefined;
}

export interface NativeConvStatus {
  /** Whether the native kernels are registered now. */
  active: boolean;
  /** e.g. `native convolutions (OpenBLAS, 2 threads)`, or why they are not in use. */
  description: string;
  /** Something the user set that was changed, said once (OMP_NUM_THREADS above the CPUs there are, capped). */
  note?: string;
}

/** The native convolution libraries `NIN_NATIVE_CONV` may name (unset or empty: `dnnl` where built, else OpenBLAS). */
const NATIVE_CONV_CHOICES = ['blas', 'dnnl', 'dnnl-direct'] as const;

/** CPUs this process may run on: its affinity mask, as `os.availableParallelism` counts them. */
export function availableCpus(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

/** What the environment asks of the native kernels, checked: see {@link checkNativeEnv}. */
export interface NativeEnv {
  conv?: (typeof NATIVE_CONV_CHOICES)[number];
  /** OMP_NUM_THREADS as given. */
  threads?: number;
  /** The thread count to use: `threads`, at most {@link availableCpus}. */
  cappedThreads?: number;
}

/**
 * Checks the environment variables the addon reads when it loads, before it loads (a
 * misspelt value would be silently ignored, a huge thread count crashes it), naming each as
 * itself in a ConfigError:
 *
 * - `NIN_NATIVE_CONV`: `blas` (OpenBLAS), `dnnl` (oneDNN, with the 5x5 Winograd where it is
 *   faster) or `dnnl-direct` (oneDNN without Winograd); unset or empty: `dnnl` where built.
 * - `OMP_NUM_THREADS`: a whole number >= 1, the threads of OpenMP (oneDNN, the Winograd,
 *   pooling, the element-wise passes) and of OpenBLAS; unset or empty: one per CPU. A count
 *   above the CPUs this process may use is capped at them (thousands of threads failed
 *   oneDNN's scratchpad, ran the Winograd out of memory, or crashed starting them).
 */
export function checkNativeEnv(env: Env = process.env): NativeEnv {
  const conv = envChoice('NIN_NATIVE_CONV', env, NATIVE_CONV_CHOICES);
  const threads = envInt('OMP_NUM_THREADS', env);
  return { conv, threads, cappedThreads: threads === undefined ? undefined : Math.min(threads, availableCpus()) };
}

/** Said once the addon loaded with OMP_NUM_THREADS capped. */
let threadNote: string | undefined;

const BACKEND = 'wasm';
// This project's own kernels (no tfjs backend has them): their names and what they compute are in
// kernelNames.ts.

const KERNELS = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MaxPool', 'MaxPoolGrad', 'Sum',
  'Relu', 'Step', 'Add', 'Multiply', RELU_BACKPROP, POOL_RELU_BACKPROP, ADAM_UPDATE] as const;
/** The kernels no tfjs backend has. */
const OWN = [RELU_BACKPROP, POOL_RELU_BACKPROP, ADAM_UPDATE];

let addon: Addon | undefined;
let loadError: string | undefined;
/** The kernels the native ones replaced, for fallback and for `unregisterNativeConvolutions`. */
const replaced = new KernelReplacement(BACKEND);

/** Path of the compiled addon. */
export function nativeAddonPath(): string {
  return path.join(packageRoot(), 'build', 'Release', 'nin_conv.node');
}

function loadAddon(): Addon | undefined {
  if (addon || loadError) return addon;
  const wanted = checkNativeEnv();
  const file = nativeAddonPath();
  if (!fs.existsSync(file)) {
    loadError = 'not built: run `npm run build:native` (needs libopenblas-dev, g++, make)';
    return undefined;
  }
  if (wanted.threads !== undefined && wanted.cappedThreads !== wanted.threads) {
    // Before OpenMP and OpenBLAS read it, as they start with the addon; set again below in
    // case OpenMP had already started in this process.
    process.env.OMP_NUM_THREADS = String(wanted.cappedThreads);
    threadNote = `OMP_NUM_THREADS=${wanted.threads} is more than the ${wanted.cappedThreads} CPU` +
      `${wanted.cappedThreads === 1 ? '' : 's'} this process may use; using ${wanted.cappedThreads}`;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(file) as Addon;
  } catch (err) {
    loadError = `failed to load ${file}: ${errorSummary(err)}`;
    return undefined;
  }
  if (wanted.cappedThreads !== undefined) {
    addon.ompThreads?.(wanted.cappedThreads);
    if (wanted.cappedThreads !== wanted.threads) addon.threads(wanted.cappedThreads);
  }
  return addon;
}

/**
 * The threads the native kernels run on: OpenMP's (oneDNN and the addon's own loops) and
 * OpenBLAS's, e.g. `2 threads`, or `1 thread (OpenBLAS: 2)` where they differ.
 */
function describeThreads(lib: Addon): string {
  const blas = lib.threads();
  const omp = lib.ompThreads?.() ?? blas;
  const count = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;
  return omp === blas ? count(omp) : `${count(omp)} (OpenBLAS: ${blas})`;
}

/** The wasm module's linear memory (re-read on every call: growing the heap replaces it). */
function heap(backend: BackendWasm): ArrayBuffer {
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer as ArrayBuffer;
}

/** Byte offset of a tensor's data in the wasm heap. */
function offsetOf(backend: BackendWasm, t: TensorInfo): number {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset;
}

function params(offsets: number[], info: backend_util.Conv2DInfo, flag = 0): Float64Array {
  const p = info.padInfo;
  return Float64Array.from([
    ...offsets,
    info.batchSize, info.inHeight, info.inWidth, info.inChannels,
    info.filterHeight, info.filterWidth, info.outChannels, info.outHeight, info.outWidth,
    info.strideHeight, info.strideWidth, p.top, p.left, flag,
  ]);
}

/** Params for the addon's non-convolution calls: four tensor offsets (-1: none), then `rest`, zero-padded. */
function flatParams(offsets: number[], ...rest: number[]): Float64Array {
  const p = new Float64Array(18);
  p.set([...offsets, ...rest]);
  return p;
}

/** NHWC, dilation 1, float32: what the native code handles. */
function supported(dataFormat: string, dilations: number | [number, number] | undefined, ...ts: TensorInfo[]): boolean {
  const d = dilations === undefined ? [1, 1] : typeof dilations === 'number' ? [dilations, dilations] : dilations;
  return dataFormat === 'NHWC' && d[0] === 1 && d[1] === 1 && ts.every((t) => t.dtype === 'float32');
}

const conv2d: KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dilations, dimRoundingMode } = args.attrs as unknown as Conv2DAttrs;
  if (!supported(dataFormat, dilations, x, filter)) return replaced.original('Conv2D')(args);
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode);
  const out = backend.makeOutput(info.outShape, 'float32');
  if (info.outShape.some((d) => d === 0)) return out;
  addon!.conv2d(heap(backend),
    params([offsetOf(backend, x), offsetOf(backend, filter), -1, offsetOf(backend, out)], info));
  return out;
};

const fusedConv2d: KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { x, filter, bias, preluActivationWeights } = args.inputs as
    { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
  const { strides, pad, dataFormat, dilations, dimRoundingMode, activation } = args.attrs as unknown as FusedConv2DAttrs;
  const simpleBias = bias == null || (bias.shape.length === 1 && bias.shape[0] === filter.shape[3]);
  if (!supported(dataFormat, dilations, x, filter, ...(bias ? [bias] : [])) || preluActivationWeights != null ||
    (activation !== 'relu' && activation !== 'linear') || !simpleBias) {
    return replaced.original('FusedConv2D')(args);
  }
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode);
  const out = backend.makeOutput(info.outShape, 'float32');
  if (info.outShape.some((d) => d === 0)) return out;
  const biasOffset = bias ? offsetOf(backend, bias) : -1;
  addon!.conv2d(heap(backend),
    params([offsetOf(backend, x), offsetOf(backend, filter), biasOffset, offsetOf(backend, out)], info,
      activation === 'relu' ? 1 : 0));
  return out;
};

const conv2dBackpropInput: KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as Conv2DBackpropInputAttrs;
  if (!supported(dataFormat, 1, dy, filter)) return replaced.original('Conv2DBackpropInput')(args);
  const info = backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number],
    strides, 1, pad, dimRoundingMode);
  const out = backend.makeOutput(inputShape, 'float32');
  if (inputShape.some((d) => d === 0)) return out;
  addon!.conv2dBackpropInput(heap(backend),
    params([offsetOf(backend, dy), offsetOf(backend, filter), -1, offsetOf(backend, out)], info));
  return out;
};

const conv2dBackpropFilter: KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as Conv2DBackpropFilterAttrs;
  if (!supported(dataFormat, 1, x, dy)) return replaced.original('Conv2DBackpropFilter')(args);
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape,
    strides, 1, pad, dimRoundingMode);
  const out = backend.makeOutput(filterShape, 'float32');
  if (filterShape.some((d) => d === 0)) return out;
  addon!.conv2dBackpropFilter(heap(backend),
    params([offsetOf(backend, x), offsetOf(backend, dy), -1, offsetOf(backend, out)], info));
  return out;
};

const maxPool: KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as MaxPoolAttrs;
  if (!supported('NHWC', 1, x)) return replaced.original('MaxPool')(args);
  const info = backend_util.computePool2DInfo(x.shape as [number, number, number, number],
    filterSize, strides, 1, pad, dimRoundingMode);
  const out = backend.makeOutput(info.outShape, 'float32');
  if (info.outShape.some((d) => d === 0)) return out;
  addon!.maxPool!(heap(backend), params([offsetOf(backend, x), -1, -1, offsetOf(backend, out)], info));
  return out;
};

const maxPoolGrad: KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as MaxPoolGradAttrs;
  if (!supported('NHWC', 1, dy, input)) return replaced.original('MaxPoolGrad')(args);
  const info = backend_util.computePool2DInfo(input.shape as [number, number, number, number],
    filterSize, strides, 1, pad, dimRoundingMode);
  const out = backend.makeOutput(input.shape, 'float32');
  if (input.shape.some((d) => d === 0)) return out;
  addon!.maxPoolGrad(heap(backend),
    params([offsetOf(backend, dy), offsetOf(backend, input), -1, offsetOf(backend, out)], info));
  return out;
};

/** Sum over the leading axes only (e.g. [N, H, W, C] → [C], a bias gradient); else wasm's Sum. */
const sum: KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  const { axis, keepDims } = args.attrs as unknown as SumAttrs;
  const axes = util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  const k = axes.length;
  if (x.dtype !== 'float32' || k === 0 || k >= x.shape.length || axes.some((a, i) => a !== i)) {
    return replaced.original('Sum')(args);
  }
  const rest = x.shape.slice(k);
  const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...rest] : rest, 'float32');
  const rows = util.sizeFromShape(x.shape.slice(0, k));
  const cols = util.sizeFromShape(rest);
  if (cols === 0) return out;
  addon!.sumRows(heap(backend), flatParams([offsetOf(backend, x), -1, -1, offsetOf(backend, out)], rows, cols));
  return out;
};

/**
 * Element-wise passes smaller than this stay on wasm: below it, handing work to the other
 * cores costs more than it saves (Adam's updates of the small layers, the loss).
 */
const ELEMENTWISE_MIN = 1 << 15;

const large = (t: TensorInfo) => t.dtype === 'float32' && util.sizeFromShape(t.shape) >= ELEMENTWISE_MIN;

function unary(name: 'Relu' | 'Step', op: number): KernelFunc {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: TensorInfo };
    if (!large(x)) return replaced.original(name)(args);
    const out = backend.makeOutput(x.shape, 'float32');
    const alpha = name === 'Step' ? (args.attrs as unknown as StepAttrs).alpha : 0;
    addon!.unary!(heap(backend), flatParams([offsetOf(backend, x), -1, -1, offsetOf(backend, out)],
      util.sizeFromShape(x.shape), op, alpha));
    return out;
  };
}

/**
 * `big op small` where `small` has `big`'s shape, or is a vector along its last axis (a bias):
 * the two cases of a training step. Anything else (other broadcasts, other types) goes to wasm.
 */
function binary(name: 'Add' | 'Multiply', op: number): KernelFunc {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const [big, small] = util.sizeFromShape(a.shape) >= util.sizeFromShape(b.shape) ? [a, b] : [b, a];
    const last = big.shape[big.shape.length - 1];
    const same = util.arraysEqual(big.shape, small.shape);
    const bias = small.shape.length === 1 && big.shape.length > 1 && small.shape[0] === last;
    if (!large(big) || small.dtype !== 'float32' || !(same || bias)) return replaced.original(name)(args);
    const out = backend.makeOutput(big.shape, 'float32');
    const size = util.sizeFromShape(big.shape);
    addon!.binary!(heap(backend), flatParams([offsetOf(backend, big), offsetOf(backend, small), -1, offsetOf(backend, out)],
      same ? 1 : size / last, same ? size : last, op));
    return out;
  };
}

const reluBackprop: KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { dy, y } = args.inputs as { dy: TensorInfo; y: TensorInfo };
  const cols = y.shape[y.shape.length - 1];
  const size = util.sizeFromShape(y.shape);
  const dz = backend.makeOutput(y.shape, 'float32');
  const db = backend.makeOutput([cols], 'float32');
  if (cols > 0) {
    addon!.reluBackprop!(heap(backend), flatParams(
      [offsetOf(backend, dy), offsetOf(backend, y), offsetOf(backend, db), offsetOf(backend, dz)], size / cols, cols));
  }
  return [dz, db];
};

const poolReluBackprop: KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { dy, y } = args.inputs as { dy: TensorInfo; y: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as MaxPoolAttrs;
  const info = backend_util.computePool2DInfo(y.shape as [number, number, number, number],
    filterSize, strides, 1, pad, dimRoundingMode);
  const dz = backend.makeOutput(y.shape, 'float32');
  const db = backend.makeOutput([info.inChannels], 'float32');
  if (info.inChannels === 0) return [dz, db];
  addon!.poolReluBackprop!(heap(backend),
    params([offsetOf(backend, dy), offsetOf(backend, y), offsetOf(backend, db), offsetOf(backend, dz)], info));
  return [dz, db];
};

/**
 * One Adam step of a weight tensor (see ADAM_UPDATE): each constant rounded to float32 as
 * tfjs rounds the scalars of its AdamOptimizer, 1 − β^t computed in float32 as its `sub` does.
 */
const adamUpdate: KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { w, g, m, v, accBeta1, accBeta2 } = args.inputs as Record<'w' | 'g' | 'm' | 'v' | 'accBeta1' | 'accBeta2', TensorInfo>;
  const { beta1, beta2, epsilon, learningRate } = args.attrs as unknown as AdamUpdateAttrs;
  const outs = [w, m, v].map((t) => backend.makeOutput(t.shape, 'float32'));
  const n = util.sizeFromShape(w.shape);
  if (n === 0) return outs;
  const acc = (t: TensorInfo) => new Float32Array(heap(backend), offsetOf(backend, t), 1)[0];
  const f = Math.fround;
  addon!.adam!(heap(backend), Float64Array.from([
    ...[w, g, m, v].map((t) => offsetOf(backend, t)), n, ...outs.map((t) => offsetOf(backend, t)),
    beta1, beta2, 1 - beta1, 1 - beta2, f(1 - acc(accBeta1)), f(1 - acc(accBeta2)), epsilon, -learningRate, 0, 0,
  ]));
  return outs;
};

/** Kernels that need an addon function older builds lack: not registered without it (wasm's stay). */
const NEEDS: Partial<Record<(typeof KERNELS)[number], keyof Addon>> = {
  MaxPool: 'maxPool', Relu: 'unary', Step: 'unary', Add: 'binary', Multiply: 'binary', [RELU_BACKPROP]: 'reluBackprop',
  [POOL_RELU_BACKPROP]: 'poolReluBackprop', [ADAM_UPDATE]: 'adam',
};

const NATIVE: Record<(typeof KERNELS)[number], KernelFunc> = {
  Conv2D: conv2d,
  FusedConv2D: fusedConv2d,
  Conv2DBackpropInput: conv2dBackpropInput,
  Conv2DBackpropFilter: conv2dBackpropFilter,
  MaxPool: maxPool,
  MaxPoolGrad: maxPoolGrad,
  Sum: sum,
  Relu: unary('Relu', 0),
  Step: unary('Step', 1),
  Add: binary('Add', 0),
  Multiply: binary('Multiply', 1),
  [RELU_BACKPROP]: reluBackprop,
  [POOL_RELU_BACKPROP]: poolReluBackprop,
  [ADAM_UPDATE]: adamUpdate,
};

/**
 * Puts the native kernels in place of the wasm ones, if the addon is built. Call after the
 * wasm backend and its gradient kernels are registered. `threads` sets OpenBLAS's thread
 * count (default: its own choice, one per core, or $OPENBLAS_NUM_THREADS).
 */
export function registerNativeConvolutions(threads?: number): NativeConvStatus {
  const lib = loadAddon();
  if (!lib) return { active: false, description: `native convolutions unavailable (${loadError})` };
  if (threads !== undefined) lib.threads(Math.min(positiveInt('threads', threads), availableCpus()));
  const names = KERNELS.filter((name) => { const need = NEEDS[name]; return need === undefined || lib[need] !== undefined; });
  replaced.install(Object.fromEntries(names.map((name) => [name, () => NATIVE[name]])), OWN);
  const name = (lib.library?.() ?? 'OpenBLAS').startsWith('oneDNN') ? 'oneDNN + OpenBLAS' : 'OpenBLAS';
  const note = threadNote === undefined ? '' : `; ${threadNote}`;
  return {
    active: true, description: `native convolutions (${name}, ${describeThreads(lib)}${note})`,
    ...(threadNote === undefined ? {} : { note: threadNote }),
  };
}

/** Whether the native kernels are registered now. */
export function nativeConvolutionsActive(): boolean {
  return replaced.active;
}

/** Restores the kernels that `registerNativeConvolutions` replaced. */
export function unregisterNativeConvolutions(): void {
  replaced.restore();
}
