/**
 * Fashion-MNIST as the chapter uses it, without touching a file: the class names, a split of
 * 28×28 uint8 images in memory, its decoding from two IDX arrays, and its NHWC float batches
 * (resized per batch). Finding and reading the files is lib/storage/fashionMnistFiles.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed, mulberry32, permutation } from './random';
import { ConfigError, positiveInt } from './validate';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxArray, dataFileError } from './idx';

/** Class names in label order (label 0 is 't-shirt'). */
export const FASHION_MNIST_CLASSES = [
  't-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot',
] as const;

/** One split as stored: `images` is count*height*width uint8 pixels, row-major (N, H, W). */
export interface FashionMnistSplit {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

/** Examples `first` .. `first + count - 1` of `split` (no copy), clamped to what it holds. */
export function sliceSplit(split: FashionMnistSplit, first: number, count: number): FashionMnistSplit {
  positiveInt('first', first, 0);
  positiveInt('count', count, 0);
  const from = Math.min(first, split.count);
  const n = Math.max(0, Math.min(count, split.count - from));
  const pixels = split.height * split.width;
  return {
    ...split, count: n,
    images: split.images.subarray(from * pixels, (from + n) * pixels), labels: split.labels.subarray(from, from + n),
  };
}

/** Rows and columns of a Fashion-MNIST image. */
export const FASHION_MNIST_SIDE = 28;

/**
 * A split from its two decoded IDX arrays, checked (`imagesFile`/`labelsFile` only name them in
 * errors): images with magic 2051 of 28×28 pixels (any other size is refused, never squashed
 * into a split), labels with 2049, as many of each, labels within the classes. Cut to `limit`
 * examples; `total` is how many the arrays hold.
 */
export function decodeSplit(
  images: IdxArray, labels: IdxArray, imagesFile: string, labelsFile: string, limit?: number,
): { split: FashionMnistSplit; total: number } {
  expectKind(images, imagesFile, 'images');
  expectKind(labels, labelsFile, 'labels');

  const [count, height, width] = images.dims; // (N, H, W)
  if (count === 0 || height === 0 || width === 0) {
    throw dataFileError(imagesFile, `holds no pixels (${images.dims.join('x')})`);
  }
  if (height !== FASHION_MNIST_SIDE || width !== FASHION_MNIST_SIDE) {
    throw dataFileError(imagesFile, `holds ${height}x${width} images, but Fashion-MNIST's are ` +
      `${FASHION_MNIST_SIDE}x${FASHION_MNIST_SIDE}: it is not a Fashion-MNIST image file`);
  }
  if (labels.dims[0] !== count) {
    throw dataFileError(imagesFile, `holds ${count} images but ${labelsFile} holds ${labels.dims[0]} labels; the two files do not belong together`);
  }
  const numClasses = FASHION_MNIST_CLASSES.length;
  const bad = labels.data.findIndex((label) => label >= numClasses);
  if (bad >= 0) {
    throw dataFileError(labelsFile, `label ${labels.data[bad]} at index ${bad} is outside 0..${numClasses - 1}`);
  }

  const whole = { images: images.data, labels: labels.data, count, height, width };
  return { split: sliceSplit(whole, 0, limit ?? count), total: count };
}

/** Images must have magic 2051 (3 dims) and labels 2049 (1 dim); a swap gets its own message. */
function expectKind(array: IdxArray, file: string, kind: 'images' | 'labels'): void {
  const [wanted, other, otherKind] =
    kind === 'images' ? [IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, 'labels'] : [IDX_LABELS_MAGIC, IDX_IMAGES_MAGIC, 'images'];
  if (array.magic === wanted) return;
  throw dataFileError(
    file,
    array.magic === other
      ? `holds ${otherKind} (IDX magic ${other}) where ${kind} (magic ${wanted}) belong: the image and label files look swapped or misnamed`
      : `has IDX magic ${array.magic} (${array.dims.length} dims), expected ${wanted} for ${kind}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Batching

export interface BatchOptions {
  /** Examples per batch; the last batch of an epoch may be smaller. */
  batchSize: number;
  /**
   * Side in pixels of the square images handed out (bilinear resize, batch by batch).
   * @default undefined (no resize: 28)
   */
  resize?: number;
  /** Visit the examples in a seeded random order. */
  shuffle: boolean;
  /** Run seed; with `epoch` it fixes the order. */
  seed: number;
  /** Epoch number (training counts from 1; evaluation passes 0); each epoch gets its own order. */
  epoch: number;
}

/** Batches in one epoch of `count` examples, counting the last partial batch. */
export function numBatches(count: number, batchSize: number): number {
  return Math.ceil(count / batchSize);
}

/**
 * One epoch of batches: xs float32 [b, H, W, 1] (NHWC) scaled to [0, 1] — [b, r, r, 1] with
 * `resize: r` — and ys int32 [b]. Each batch is built when asked for, so the resized dataset
 * never exists whole. The caller disposes xs and ys.
 */
export function batches(split: FashionMnistSplit, opts: BatchOptions): Generator<{ xs: tf.Tensor4D; ys: tf.Tensor1D }> {
  positiveInt('batchSize', opts.batchSize);
  if (opts.resize !== undefined) positiveInt('resize', opts.resize);
  if (typeof opts.shuffle !== 'boolean') throw new ConfigError(`shuffle must be true or false, got ${String(opts.shuffle)}`);
  if (!Number.isInteger(opts.seed)) throw new ConfigError(`seed must be an integer, got ${String(opts.seed)}`);
  positiveInt('epoch', opts.epoch, 0);
  return batchGenerator(split, opts);
}

function* batchGenerator(split: FashionMnistSplit, opts: BatchOptions): Generator<{ xs: tf.Tensor4D; ys: tf.Tensor1D }> {
  const { count, height, width, images, labels } = split;
  const { batchSize, resize } = opts;
  const order = opts.shuffle ? permutation(count, mulberry32(deriveSeed(opts.seed, opts.epoch))) : identity(count);
  const pixels = height * width;

  for (let start = 0; start < count; start += batchSize) {
    const size = Math.min(batchSize, count - start);
    const x = new Float32Array(size * pixels);
    const y = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      const example = order[start + i];
      const from = example * pixels;
      for (let p = 0; p < pixels; p++) x[i * pixels + p] = images[from + p] / 255;
      y[i] = labels[example];
    }
    const xs = tf.tidy(() => {
      const raw = tf.tensor4d(x, [size, height, width, 1]); // NHWC [b, H, W, 1]
      if (resize === undefined || (resize === height && resize === width)) return raw;
      // Half-pixel centres, as PIL/torchvision resize: the image is scaled about its centre.
      return tf.image.resizeBilinear(raw, [resize, resize], false, true); // NHWC [b, r, r, 1]
    });
    yield { xs, ys: tf.tensor1d(y, 'int32') };
  }
}

function identity(n: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order;
}

/** The examples of `split` in their stored order, in batches (evaluation's and inspection's way through a split). */
export function inOrder(split: FashionMnistSplit, batchSize: number, resize?: number): Generator<{ xs: tf.Tensor4D; ys: tf.Tensor1D }> {
  return batches(split, { batchSize, resize, shuffle: false, seed: 0, epoch: 0 });
}

/** The first `size` examples of `split` as one batch (fewer if it holds fewer); undefined for an empty split. The caller disposes it. */
export function firstBatch(split: FashionMnistSplit, size: number, resize?: number): { xs: tf.Tensor4D; ys: tf.Tensor1D } | undefined {
  return inOrder(sliceSplit(split, 0, size), size, resize).next().value ?? undefined;
}
