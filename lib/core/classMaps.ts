/**
 * Class maps: what NiN's last block sees before global average pooling. That block has one
 * channel per class, and the pooling turns each channel into its class's score by averaging
 * it over the image, so each channel is already a map of where the network finds evidence
 * for that class (Zhou et al., 2016, built class activation maps on this).
 *
 * NiN is convolutional up to that pooling, so the trained weights can read a larger image
 * than they were trained on: a grid of test images (`classMapMosaic`) gives maps with room to
 * show *where*, even when a training-size image gives a 1×1 map.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { batches, FashionMnistSplit, sliceSplit } from './fashionMnist';
import { predict } from './evaluate';
import { featureMapSize, nin, NinConfig } from './model';
import { greyPngDataUrl, gridPanelWidth, heatOverlayPngDataUrl, imageGridChart, VegaLiteSpec } from './plots';
import { positiveInt } from './validate';

/** The last block's maps for `xs`: [N, h, w, classes], every layer before the global average pooling. */
export function classMaps(model: tfl.LayersModel, xs: tf.Tensor4D): tf.Tensor4D {
  const gap = model.layers.findIndex((l) => l.name === 'global_avg_pool');
  if (gap < 0) throw new Error(`${model.name} has no global_avg_pool layer: class maps need NiN's pooling head`);
  return tf.tidy(() => model.layers.slice(0, gap)
    .reduce((x, layer) => layer.apply(x, { training: false }) as tf.Tensor, xs as tf.Tensor) as tf.Tensor4D);
}

/** A NiN for `inputSize`-px images holding `model`'s weights (they do not depend on the image size). */
export function withInputSize(model: tfl.LayersModel, config: Partial<NinConfig>, inputSize: number): tfl.Sequential {
  const copy = nin({ ...config, inputSize });
  copy.setWeights(model.getWeights());
  return copy;
}

export interface ClassMapMosaic {
  /** The grid of test images, grey 0–255, `side`×`side`. */
  image: Uint8Array;
  side: number;
  /** Maps, [mapSide, mapSide, classes] row-major, as the last block outputs them (≥ 0). */
  maps: Float32Array;
  mapSide: number;
  classes: number;
  /** True class of each tile, row by row. */
  labels: number[];
  /** The class each tile's own score ranks first (the model on that image alone). */
  predicted: number[];
}

export interface MosaicOptions {
  /** Tiles per side: `grid`² test images. @default 3 */
  grid: number;
  /** Side each image is resized to, as in training. */
  resize: number;
  /** Index of the first test image used. @default 0 */
  first: number;
}

/**
 * The trained model's class maps for a `grid`×`grid` mosaic of test images, each resized to the
 * training size: one image of `grid · resize` px read by the same weights.
 */
export function classMapMosaic(model: tfl.LayersModel, config: Partial<NinConfig>, test: FashionMnistSplit,
  options: Partial<MosaicOptions> & { resize: number }): ClassMapMosaic {
  const { grid, resize, first } = { grid: 3, first: 0, ...options };
  positiveInt('grid', grid);
  const n = grid * grid;
  if (first + n > test.count) throw new Error(`a ${grid}×${grid} mosaic from test image ${first} needs ${first + n} test images, there are ${test.count}`);
  const side = grid * resize;
  const big = withInputSize(model, config, side);
  const subset = sliceSplit(test, first, n);
  const { value } = batches(subset, { batchSize: n, resize, shuffle: false, seed: 0, epoch: 0 }).next();
  const [mosaic, maps] = tf.tidy(() => {
    const tiled = value.xs.reshape([grid, grid, resize, resize, 1]).transpose([0, 2, 1, 3, 4]).reshape([1, side, side, 1]) as tf.Tensor4D;
    return [tiled, classMaps(big, tiled)];
  });
  const result = {
    image: Uint8Array.from(mosaic.dataSync(), (v) => Math.round(Math.min(1, Math.max(0, v)) * 255)),
    side, maps: maps.dataSync() as Float32Array, mapSide: featureMapSize(side), classes: maps.shape[3],
    labels: Array.from(value.ys.dataSync() as Int32Array), predicted: predict(model, subset, resize),
  };
  tf.dispose([mosaic, maps, value.xs, value.ys]);
  big.dispose();
  return result;
}

/** One class's map from `maps` ([h, w, classes]), as a row-major h×w array. */
export function mapOf(m: Pick<ClassMapMosaic, 'maps' | 'mapSide' | 'classes'>, k: number): Float32Array {
  const out = new Float32Array(m.mapSide * m.mapSide);
  for (let p = 0; p < out.length; p++) out[p] = m.maps[p * m.classes + k];
  return out;
}

/**
 * Widest the class-map chart is drawn, in px: a JupyterLab or classic Notebook output column
 * shows about 900–1000 px, and a wider chart loses its last column.
 */
export const CLASS_MAP_CHART_WIDTH = 900;

/** Panels to a row of the class-map chart: the mosaic and ten classes make rows of 4, 4 and 3. */
const CLASS_MAP_COLUMNS = 4;

/**
 * The mosaic, then each class's map laid over it, all on one scale (the largest value of any
 * map), so a bright region is strong evidence for that class there, comparable across classes.
 *
 * Each panel is `side · scale` px, but never wider than {@link CLASS_MAP_CHART_WIDTH} allows
 * for a row of four (about 200 px: a 16-image mosaic keeps its tiles 50 px wide, more than
 * Fashion-MNIST's 28). A mosaic drawn smaller is averaged down to the panel's pixels first,
 * so no thin line drops out between screen pixels.
 */
export function classMapChart(m: ClassMapMosaic, names: readonly string[], scale = 1): VegaLiteSpec {
  const max = m.maps.reduce((a, v) => Math.max(a, v), 0);
  const fits = gridPanelWidth(CLASS_MAP_CHART_WIDTH, CLASS_MAP_COLUMNS);
  const shown = Math.max(1, Math.min(Math.round(m.side * scale), fits));
  const side = Math.min(m.side, shown);
  const image = side < m.side ? shrinkGrey(m.image, m.side, side) : m.image;
  const panels = Array.from({ length: m.classes }, (_, k) => heatOverlayPngDataUrl(image, side, mapOf(m, k), m.mapSide, max));
  const titles = ['test images', ...Array.from({ length: m.classes }, (_, k) => names[k] ?? `class ${k}`)];
  return imageGridChart([greyPngDataUrl(image, side, side), ...panels], titles, shown, shown, CLASS_MAP_COLUMNS);
}

/** A square grey image of `side` px averaged down to `target` px (each output pixel the mean of the input area it covers). */
export function shrinkGrey(image: Uint8Array, side: number, target: number): Uint8Array {
  const out = new Uint8Array(target * target);
  const f = side / target;
  // Coverage of input pixel i by output pixel o along one axis.
  const weights = (o: number): Array<[number, number]> => {
    const lo = o * f;
    const hi = lo + f;
    const w: Array<[number, number]> = [];
    for (let i = Math.floor(lo); i < Math.min(side, Math.ceil(hi)); i++) w.push([i, Math.min(hi, i + 1) - Math.max(lo, i)]);
    return w;
  };
  const axis = Array.from({ length: target }, (_, o) => weights(o));
  for (let y = 0; y < target; y++) {
    for (let x = 0; x < target; x++) {
      let sum = 0;
      for (const [iy, wy] of axis[y]) for (const [ix, wx] of axis[x]) sum += image[iy * side + ix] * wy * wx;
      out[y * target + x] = Math.round(sum / (f * f));
    }
  }
  return out;
}
