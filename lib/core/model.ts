/**
 * The NiN block and the NiN network of the chapter, as tfjs-layers models.
 *
 * tfjs is NHWC: an input batch is [N, H, W, 1], where the chapter (MXNet) writes
 * [N, 1, H, W]. `layerSummary` prints shapes the chapter's way (NCHW) for comparison.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { deriveSeed } from './random';
import { ConfigError, inRange, oneOf, positiveInt, withDefaults } from './validate';

/** Smallest square input that still has one pixel left after the third max-pool. */
export const MIN_INPUT_SIZE = 67;

export interface NinConfig {
  /** Number of classes (channels of the last NiN block). @default 10 */
  numClasses: number;
  /** Side of the square input image in pixels; at least 67. @default 224 */
  inputSize: number;
  /** Input channels (1 for Fashion-MNIST). @default 1 */
  inputChannels: number;
  /** Convolutions after the first one in each NiN block (the chapter has 2). 0–3. @default 2 */
  oneByOneCount: number;
  /** Kernel size of those follow-up convolutions: 1 (the chapter) or 3 (an exercise). @default 1 */
  oneByOneKernel: 1 | 3;
  /** Dropout rate before the last block. @default 0.5 */
  dropout: number;
  /** `gap`: global average pooling (the chapter); `dense`: flatten + a dense layer (an exercise). @default 'gap' */
  head: 'gap' | 'dense';
  /**
   * How the weights start: `glorot` (Xavier uniform kernels, variance 2 / (fan in + fan out),
   * zero biases: the book's MXNet code), `he` (He et al. 2015: uniform kernels with variance
   * 2 / fan in, made for ReLU, so each layer keeps the size of its input signal where Glorot's
   * shrinks it through NiN's twelve ReLU convolutions; zero biases), or `d2l-torch` (what d2l's
   * PyTorch code does: Glorot kernels, and PyTorch's default biases, uniform in ±1/√(fan in),
   * fan in = kernel height × width × input channels). @default 'glorot'
   */
  init: KernelInit;
  /**
   * Starting bias of the last block's convolutions, the ones with a channel per class. At 0
   * (the chapter's), Glorot's shrinking signals start the class scores near 1e-4, and two to
   * five of the ten class channels output 0 for every image (seeds 0–9); Adam's first steps
   * move every weight by about the learning rate whatever its gradient, more than those
   * signals, and can switch class channels off for good. At 0.1 the scores start near 0.1 and
   * fewer channels start off (0–3), which revive: see docs/recipe.md's seed table. @default 0
   */
  classBlockBias: number;
  /** Seed for the kernel initialisers (not dropout); undefined draws fresh ones. @default undefined */
  seed?: number;
}

export const KERNEL_INITS = ['glorot', 'he', 'd2l-torch'] as const;
export type KernelInit = (typeof KERNEL_INITS)[number];

export const NIN_DEFAULTS: Readonly<NinConfig> = Object.freeze({
  numClasses: 10,
  inputSize: 224,
  inputChannels: 1,
  oneByOneCount: 2,
  oneByOneKernel: 1,
  dropout: 0.5,
  head: 'gap',
  init: 'glorot',
  classBlockBias: 0,
  seed: undefined,
});

/** Fills defaults and checks every field; throws a ConfigError naming the first bad one. */
export function resolveNinConfig(partial: Partial<NinConfig> = {}): NinConfig {
  const c = withDefaults('model', partial, NIN_DEFAULTS);
  positiveInt('numClasses', c.numClasses, 2);
  positiveInt('inputChannels', c.inputChannels);
  positiveInt('oneByOneCount', c.oneByOneCount, 0, 3);
  if (c.oneByOneKernel !== 1 && c.oneByOneKernel !== 3) {
    throw new ConfigError((n) => `${n} must be 1 or 3, got ${c.oneByOneKernel}`, 'oneByOneKernel');
  }
  inRange('dropout', c.dropout, 0, 1);
  oneOf('head', c.head, ['gap', 'dense'] as const);
  oneOf('init', c.init, KERNEL_INITS);
  if (typeof c.classBlockBias !== 'number' || !Number.isFinite(c.classBlockBias) || Math.abs(c.classBlockBias) > 10) {
    throw new ConfigError((n) => `${n} must be a number from -10 to 10, got ${String(c.classBlockBias)}`, 'classBlockBias');
  }
  if (c.seed !== undefined) positiveInt('seed', c.seed, 0);
  checkInputSize('inputSize', c.inputSize);
  return c;
}

/**
 * Throws a ConfigError unless `value` is a whole number of pixels NiN can take: at least
 * {@link MIN_INPUT_SIZE} (smaller images vanish in the third max-pool). `name` is the field.
 */
export function checkInputSize(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_INPUT_SIZE) {
    throw new ConfigError((n) => `${n} must be an integer of at least ${MIN_INPUT_SIZE} px for NiN, got ${String(value)} ` +
      '(smaller images vanish in the third max-pool)', name);
  }
  return value;
}

export interface NinBlockOptions {
  /** Follow-up convolutions after the first (the chapter: 2). @default 2 */
  oneByOneCount?: number;
  /** Their kernel size. @default 1 */
  oneByOneKernel?: 1 | 3;
  /** Prefix for layer names, e.g. `block1`. */
  name?: string;
  /** Input shape [H, W, C] when this block starts a model. */
  inputShape?: [number, number, number];
  /** Kernel initialiser (see {@link NinConfig.init}). @default 'glorot' */
  init?: KernelInit;
  /** Initialiser seed; each layer derives its own from it. */
  seed?: number;
  /** Starting value of every bias in the block; undefined: the init's (0, or drawn for `d2l-torch`). @default undefined */
  bias?: number;
  /** Channels of the block's input (from `inputShape` when given); `d2l-torch` sizes its biases by it. @default 1 */
  inputChannels?: number;
}

type Initializer = ReturnType<typeof tfl.initializers.heUniform>;

/**
 * The kernel initialiser `init` names, seeded when `seed` is given. All are uniform: tfjs's
 * normal initialisers take a seed of 0 for "no seed" and would draw fresh weights.
 */
export function kernelInitializer(init: KernelInit, seed?: number): Initializer {
  return init === 'he' ? tfl.initializers.heUniform({ seed }) : tfl.initializers.glorotUniform({ seed });
}

/**
 * The bias initialiser: the constant `bias` when given, else the init's: zeros, or for
 * `d2l-torch` PyTorch's default, uniform in ±1/√fanIn (seeded when `seed` is given).
 */
export function biasInitializer(init: KernelInit, fanIn: number, bias?: number, seed?: number): Initializer | 'zeros' {
  if (bias !== undefined && bias !== 0) return tfl.initializers.constant({ value: bias });
  if (init !== 'd2l-torch') return 'zeros';
  const bound = 1 / Math.sqrt(fanIn);
  return tfl.initializers.randomUniform({ minval: -bound, maxval: bound, seed });
}

/**
 * One NiN block: a `kernelSize` convolution then `oneByOneCount` 1×1 convolutions, each
 * followed by ReLU. The 1×1 convolutions act as a small fully connected network applied at
 * every pixel, with channels as features. Returns the layers in order (add them to a model).
 */
export function ninBlock(
  filters: number, kernelSize: number, strides: number, padding: 'valid' | 'same',
  options: NinBlockOptions = {},
): tfl.layers.Layer[] {
  const { oneByOneCount = 2, oneByOneKernel = 1, name, inputShape, init = 'glorot', seed, bias } = options;
  const inputChannels = inputShape?.[2] ?? options.inputChannels ?? 1;
  const conv = (k: number, s: number, pad: 'valid' | 'same', i: number, first: boolean) => tfl.layers.conv2d({
    filters, kernelSize: k, strides: s, padding: pad, activation: 'relu',
    kernelInitializer: kernelInitializer(init, seed === undefined ? undefined : deriveSeed(seed, i)),
    biasInitializer: biasInitializer(init, k * k * (first ? inputChannels : filters), bias, seed === undefined ? undefined : deriveSeed(seed, i, 1)),
    name: name ? `${name}_conv${i}` : undefined,
    ...(first && inputShape ? { inputShape } : {}),
  });
  const layers = [conv(kernelSize, strides, padding, 0, true)];
  for (let i = 1; i <= oneByOneCount; i++) layers.push(conv(oneByOneKernel, 1, 'same', i, false));
  return layers;
}

/**
 * The chapter's NiN (NHWC):
 *
 *   block(96, 11×11, stride 4, no pad) → maxpool 3/2
 *   block(256, 5×5, pad 2)             → maxpool 3/2
 *   block(384, 3×3, pad 1)             → maxpool 3/2 → dropout 0.5
 *   block(classes, 3×3, pad 1)         → global average pool → flatten → [N, classes] logits
 *
 * Layer names carry the chapter's grouping (`block1_conv0`, `pool1`, …) for `layerSummary`.
 */
export function nin(partial: Partial<NinConfig> = {}): tfl.Sequential {
  const c = resolveNinConfig(partial);
  // Hashed, not added: with seed + offset, run seed 1's layers would reuse run seed 0's.
  const seedFor = (i: number) => (c.seed === undefined ? undefined : deriveSeed(c.seed, i));
  const block = (i: number, filters: number, k: number, s: number, pad: 'valid' | 'same', inputChannels: number) =>
    ninBlock(filters, k, s, pad, {
      oneByOneCount: c.oneByOneCount, oneByOneKernel: c.oneByOneKernel, name: `block${i}`, init: c.init, seed: seedFor(i),
      bias: i === 4 ? c.classBlockBias : undefined, inputChannels,
      inputShape: i === 1 ? [c.inputSize, c.inputSize, c.inputChannels] : undefined,
    });
  const pool = (i: number) => tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid', name: `pool${i}` });

  const model = tfl.sequential({ name: 'nin' });
  const add = (layers: tfl.layers.Layer[]) => layers.forEach((l) => model.add(l));
  add(block(1, 96, 11, 4, 'valid', c.inputChannels)); // 224 → 54
  add([pool(1)]); //                   54 → 26
  add(block(2, 256, 5, 1, 'same', 96)); // 26 → 26
  add([pool(2)]); //                   26 → 12
  add(block(3, 384, 3, 1, 'same', 256)); // 12 → 12
  add([pool(3)]); //                   12 → 5
  // No seed here: tfjs-layers would reuse one seed for every step, freezing the dropout mask.
  add([tfl.layers.dropout({ rate: c.dropout, name: 'dropout' })]);
  add(block(4, c.numClasses, 3, 1, 'same', 384)); // 5 → 5, channels = classes
  if (c.head === 'gap') {
    // Global average pooling the chapter's way: one window as large as the feature map
    // (5×5 at 224 px), then flatten. [N, 5, 5, C] → [N, 1, 1, C] → [N, C]
    const side = featureMapSize(c.inputSize);
    add([tfl.layers.averagePooling2d({ poolSize: side, strides: side, name: 'global_avg_pool' }),
      tfl.layers.flatten({ name: 'flatten' })]);
  } else {
    const fanIn = featureMapSize(c.inputSize) ** 2 * c.numClasses; // the flattened class block
    add([tfl.layers.flatten({ name: 'flatten' }), tfl.layers.dense({
      units: c.numClasses, name: 'dense',
      kernelInitializer: kernelInitializer(c.init, seedFor(5)),
      biasInitializer: biasInitializer(c.init, fanIn, undefined, c.seed === undefined ? undefined : deriveSeed(c.seed, 5, 1)),
    })]);
  }
  return model;
}

/** Side of the last block's feature map for a square input (5 for 224 px, 1 for 67..~95 px). */
export function featureMapSize(inputSize: number): number {
  const pool = (x: number) => Math.floor((x - 3) / 2) + 1; // max-pool 3, stride 2, no padding
  const conv1 = Math.floor((inputSize - 11) / 4) + 1; //      11×11, stride 4, no padding
  return pool(pool(pool(conv1))); //                          'same' convolutions keep the size
}

export interface LayerRow {
  /** The chapter's row name: `block1`, `pool1`, `dropout`, `global_avg_pool`, `flatten`, … */
  name: string;
  /** Output shape in tfjs's layout, NHWC, batch 1. */
  shapeNHWC: number[];
  /** The same shape as the chapter prints it, NCHW. */
  shapeNCHW: number[];
  /** Trainable parameters in this row. */
  params: number;
}

/**
 * Output shape and parameter count of each of the chapter's rows for one image: consecutive
 * layers named `blockK_…` are merged into one `blockK` row. The chapter's table for 224 px is
 * (1,96,54,54) (1,96,26,26) (1,256,26,26) (1,256,12,12) (1,384,12,12) (1,384,5,5) (1,384,5,5)
 * (1,10,5,5) (1,10,1,1) (1,10).
 */
export function layerSummary(model: tfl.LayersModel): LayerRow[] {
  const rows: LayerRow[] = [];
  for (const layer of model.layers) {
    const shape = (layer.outputShape as (number | null)[]).map((d) => (d == null ? 1 : d));
    const name = layer.name.replace(/_conv\d+$/, '');
    const params = layer.countParams();
    const last = rows[rows.length - 1];
    if (last && last.name === name) {
      last.shapeNHWC = shape;
      last.shapeNCHW = toNCHW(shape);
      last.params += params;
    } else {
      rows.push({ name, shapeNHWC: shape, shapeNCHW: toNCHW(shape), params });
    }
  }
  return rows;
}

function toNCHW(shape: number[]): number[] {
  return shape.length === 4 ? [shape[0], shape[3], shape[1], shape[2]] : shape;
}

/** Total trainable parameters (1,992,166 for the chapter's network, whatever the input size). */
export function countParams(model: tfl.LayersModel): number {
  return model.layers.reduce((sum, l) => sum + l.countParams(), 0);
}

/** The summary as the text table `nin shapes` prints. */
export function formatLayerSummary(rows: LayerRow[]): string {
  const fmt = (s: number[]) => `(${s.join(', ')})`;
  const w0 = Math.max(...rows.map((r) => r.name.length), 5);
  const w1 = Math.max(...rows.map((r) => fmt(r.shapeNCHW).length), 24);
  const lines = [
    `${'layer'.padEnd(w0)}  ${'output shape (N, C, H, W)'.padEnd(w1)}  ${'params'.padStart(9)}`,
    ...rows.map((r) => `${r.name.padEnd(w0)}  ${fmt(r.shapeNCHW).padEnd(w1)}  ${r.params.toLocaleString('en-US').padStart(9)}`),
  ];
  const total = rows.reduce((s, r) => s + r.params, 0);
  lines.push(`${'total'.padEnd(w0)}  ${''.padEnd(w1)}  ${total.toLocaleString('en-US').padStart(9)}`);
  return lines.join('\n');
}

/**
 * Multiply-adds ×2 (FLOPs) of one forward pass for one image, counting convolutions and
 * dense layers (pooling, ReLU and the like are comparatively free and left out).
 */
export function countFlops(model: tfl.LayersModel): number {
  let flops = 0;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const out = layer.outputShape as number[]; // [null, H, W, C] or [null, units]
    if (cls === 'Conv2D') {
      const [kh, kw, ci] = layer.getWeights()[0].shape; // kernel [KH, KW, Ci, Co]
      flops += 2 * out[1] * out[2] * out[3] * kh * kw * ci;
    } else if (cls === 'Dense') {
      const [inputs, units] = layer.getWeights()[0].shape;
      flops += 2 * inputs * units;
    }
  }
  return flops;
}

/** The first convolution's filters (`block1_conv0`'s kernel [k, k, channels, filters]) as plain numbers. */
export function firstLayerFilters(model: tfl.LayersModel): { kernel: Float32Array; size: number; count: number } {
  const kernel = model.getLayer('block1_conv0').getWeights()[0];
  const [size, , , count] = kernel.shape;
  return { kernel: Float32Array.from(kernel.dataSync() as Float32Array), size, count };
}

/**
 * The model's logits for a batch `xs` [N, H, W, C] in inference mode (no dropout), in one
 * forward pass. (`model.predict` alone would cut the batch into passes of 32 images, which
 * is slower and not what a "batch of N" means.)
 */
export function logitsOf(model: tfl.LayersModel, xs: tf.Tensor): tf.Tensor2D {
  return model.predict(xs, { batchSize: Math.max(1, xs.shape[0]) }) as tf.Tensor2D;
}
