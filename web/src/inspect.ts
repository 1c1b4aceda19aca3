/**
 * What the page computes with a model, all through lib/core: the input exactly as the library
 * preprocesses Fashion-MNIST (`firstBatch` on a one-image split: 28×28 grey / 255, bilinear
 * resize with half-pixel centres), logits, class maps, every block's activations, the filters.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { FASHION_MNIST_SIDE, FashionMnistSplit, firstBatch, sliceSplit } from '../../lib/core/fashionMnist';
import { classMaps, withInputSize } from '../../lib/core/classMaps';
import { featureMapSize, layerSummary, LayerRow, logitsOf } from '../../lib/core/model';
import type { NinShape } from '../../lib/frontends/webModel';

/** A 28×28 grey image (uint8, row-major) as a split of one, so that the library's batching preprocesses it. */
export function splitOfOne(grey: Uint8Array, label = 0): FashionMnistSplit {
  return { images: grey, labels: Uint8Array.of(label), count: 1, height: FASHION_MNIST_SIDE, width: FASHION_MNIST_SIDE };
}

/** The network's input for one 28×28 image at `size` px: [1, size, size, 1]. The caller disposes it. */
export function preprocess(grey: Uint8Array, size: number): tf.Tensor4D {
  const batch = firstBatch(splitOfOne(grey), 1, size)!;
  batch.ys.dispose();
  return batch.xs;
}

/** Test images first..first+count-1 as the library batches them, [count, size, size, 1]. */
export function preprocessMany(split: FashionMnistSplit, first: number, count: number, size: number): tf.Tensor4D {
  const batch = firstBatch(sliceSplit(split, first, count), count, size)!;
  batch.ys.dispose();
  return batch.xs;
}

/** The model's logits for a batch, as plain rows. */
export function logitRows(model: tfl.LayersModel, xs: tf.Tensor4D): number[][] {
  const logits = tf.tidy(() => logitsOf(model, xs));
  const rows = logits.arraySync() as number[][];
  logits.dispose();
  return rows;
}

/** One image's view through a model: logits and probabilities, the class maps read at `mapSize` px, their means. */
export interface Reading {
  logits: number[];
  probs: number[];
  mapSize: number;
  mapSide: number;
  /** maps[k]: class k's map, mapSide², row-major. */
  maps: Float32Array[];
  mapMeans: number[];
  /** The scores of the reading the maps come from (the logits when mapSize is the model's). */
  mapScores: number[];
  /** The input at mapSize px, grey 0–255, for drawing the maps over. */
  mapInput: Uint8Array;
}

/** Models holding `model`'s weights for other input sizes, made once per size. */
export class Resized {
  private readonly copies = new Map<number, tfl.LayersModel>();
  constructor(private readonly model: tfl.LayersModel, private readonly shape: NinShape) {}
  at(size: number): tfl.LayersModel {
    if (size === this.shape.inputSize) return this.model;
    let m = this.copies.get(size);
    if (!m) {
      m = withInputSize(this.model, { oneByOneCount: this.shape.oneByOneCount, oneByOneKernel: this.shape.oneByOneKernel }, size);
      this.copies.set(size, m);
    }
    return m;
  }
  /** Forget the copies (after the model's weights changed). */
  reset(): void {
    this.copies.forEach((m) => m.dispose());
    this.copies.clear();
  }
}

export function read(model: tfl.LayersModel, resized: Resized, shape: NinShape, grey: Uint8Array, mapSize: number): Reading {
  const xs = preprocess(grey, shape.inputSize);
  const [logits] = logitRows(model, xs);
  const probs = tf.tidy(() => tf.softmax(tf.tensor1d(logits)).arraySync() as number[]);
  const big = resized.at(mapSize);
  // A larger reading is the same input in a black frame (Fashion-MNIST's background): the
  // clothes keep the scale the network was trained at, and the maps get room to show where.
  const pad = (mapSize - shape.inputSize) / 2;
  const xb = mapSize === shape.inputSize ? xs : tf.pad(xs, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) as tf.Tensor4D;
  const maps4 = classMaps(big, xb); // [1, h, w, classes]
  const mapSide = maps4.shape[1];
  const data = maps4.dataSync() as Float32Array;
  const classes = maps4.shape[3];
  const maps: Float32Array[] = [];
  for (let k = 0; k < classes; k++) {
    const m = new Float32Array(mapSide * mapSide);
    for (let p = 0; p < m.length; p++) m[p] = data[p * classes + k];
    maps.push(m);
  }
  const mapMeans = maps.map((m) => m.reduce((a, b) => a + b, 0) / m.length);
  const mapScores = mapSize === shape.inputSize ? logits : logitRows(big, xb)[0];
  const mapInput = Uint8Array.from(xb.dataSync(), (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
  tf.dispose([maps4, xs, xb]);
  return { logits, probs, mapSize, mapSide, maps, mapMeans, mapScores, mapInput };
}

/**
 * Sizes to read an image at for its class maps: the model's own, and the input in black frames
 * 32, 64 and 96 px wide (each 64 px more adds 2 cells to a map's side).
 */
export function mapSizes(inputSize: number): number[] {
  return [inputSize, ...[64, 128, 192].map((f) => inputSize + f).filter((s) => featureMapSize(s) > featureMapSize(inputSize))];
}

/** Each of the chapter's rows (block1, pool1, …) and its output for one input, [1, H, W, C] or [1, C]. */
export function activations(model: tfl.LayersModel, xs: tf.Tensor4D): { rows: LayerRow[]; outputs: { data: Float32Array; shape: number[] }[] } {
  const rows = layerSummary(model);
  const outputs: { data: Float32Array; shape: number[] }[] = [];
  tf.tidy(() => {
    let x: tf.Tensor = xs;
    let row = 0;
    model.layers.forEach((layer, i) => {
      x = layer.apply(x, { training: false }) as tf.Tensor;
      const name = layer.name.replace(/_conv\d+$/, '');
      const nextName = model.layers[i + 1]?.name.replace(/_conv\d+$/, '');
      if (nextName !== name) {
        outputs.push({ data: Float32Array.from(x.dataSync() as Float32Array), shape: x.shape });
        row++;
      }
    });
    return row;
  });
  return { rows, outputs };
}
