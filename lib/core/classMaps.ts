/**
 * Class maps: what NiN's last block sees before global average pooling. That block has one
 * channel per class, and the pooling turns each channel into its class's score by averaging
 * it over the image, so each channel is already a map of where the network finds evidence
 * for that class (Zhou et al., 2016, built class activation maps on this).
 *
 * NiN is convolutional up to that pooling, so the trained weights can read a larger image
 * than they were trained on: a grid of test images (`classMapMosaic`) gives maps with room to
 * show *where*, even when a training-size image gives a 1×1 map. How well those maps point is
 * measured by lib/core/pointingGame.ts, and docs/class-maps.md says what the two choices
 * below (the aligned layout, the trained taps) do to it.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { batches, FashionMnistSplit, sliceSplit } from './fashionMnist';
import { predict } from './evaluate';
import { nin, NinConfig } from './model';
import { greyPngDataUrl, gridPanelWidth, heatOverlayPngDataUrl, imageGridChart, VegaLiteSpec } from './plots';
import { ConfigError, oneOf, positiveInt, withDefaults } from './validate';

/** The last block's maps for `xs`: [N, h, w, classes], every layer before the global average pooling. */
export function classMaps(model: tfl.LayersModel, xs: tf.Tensor4D): tf.Tensor4D {
  const gap = model.layers.findIndex((l) => l.name === 'global_avg_pool');
  if (gap < 0) throw new Error(`${model.name} has no global_avg_pool layer: class maps need NiN's pooling head`);
  return tf.tidy(() => model.layers.slice(0, gap)
    .reduce((x, layer) => layer.apply(x, { training: false }) as tf.Tensor, xs as tf.Tensor) as tf.Tensor4D);
}

/**
 * Which of the trained kernel's taps a larger reading keeps. `all`: every tap, as stored.
 * `trained`: a tap that only ever met padding at the model's own input size is set to 0. At
 * 67 px the last block's 3×3 convolution reads a 1×1 map, so its eight outer taps multiplied
 * zeros in every training step, got no gradient, and still hold their random starting values;
 * in a larger reading they would mix each cell's neighbours in at random. Setting them to 0
 * reads each place as the network computed at its training size.
 */
export const TAP_CHOICES = ['trained', 'all'] as const;
export type Taps = (typeof TAP_CHOICES)[number];

/**
 * A NiN for `inputSize`-px images holding `model`'s weights (they do not depend on the image
 * size); with `taps: 'trained'` the taps `model`'s own input size never reached are 0.
 */
export function withInputSize(model: tfl.LayersModel, config: Partial<NinConfig>, inputSize: number, taps: Taps = 'all'): tfl.Sequential {
  oneOf('taps', taps, TAP_CHOICES);
  const copy = nin({ ...config, inputSize });
  copy.setWeights(model.getWeights());
  if (taps === 'trained') zeroUntrainedTaps(model, copy);
  return copy;
}

/** In `copy`, the taps of each 'same' convolution that reached only padding in `model` (at its own size) set to 0. */
function zeroUntrainedTaps(model: tfl.LayersModel, copy: tfl.LayersModel): void {
  for (const layer of model.layers) {
    const c = layer.getConfig();
    const [kh, kw] = (c.kernelSize as number[] | undefined) ?? [1, 1];
    if (c.padding !== 'same' || (kh === 1 && kw === 1)) continue;
    const [, h, w] = (layer.input as tfl.SymbolicTensor).shape as number[]; // NHWC [null, h, w, c] at the model's own size
    // Tap (i, j) looks (i - ⌊kh/2⌋, j - ⌊kw/2⌋) cells away: beyond the map's own extent it only ever saw padding.
    const reached = (i: number, k: number, n: number) => Math.abs(i - Math.floor(k / 2)) < n;
    if (Array.from({ length: kh }, (_, i) => reached(i, kh, h)).every(Boolean) && Array.from({ length: kw }, (_, j) => reached(j, kw, w)).every(Boolean)) continue;
    const target = copy.getLayer(layer.name);
    const [kernel, ...rest] = target.getWeights();
    const mask = tf.tensor4d(Array.from({ length: kh }, (_, i) => Array.from({ length: kw }, (_, j) =>
      [[reached(i, kh, h) && reached(j, kw, w) ? 1 : 0]]))); // [kh, kw, 1, 1]
    const masked = tf.mul(kernel, mask); // [kh, kw, in, out]
    target.setWeights([masked, ...rest]);
    tf.dispose([mask, masked]);
  }
}

/**
 * Where the last block's cells sit on the input, from the layers' kernels, strides and
 * padding: cell j's receptive field is centred at `first + stride · j` px along each axis.
 */
export interface CellGeometry {
  /** Pixels from one cell's centre to the next's (NiN: 4 · 2 · 2 · 2 = 32). */
  stride: number;
  /** Centre of cell 0, in continuous pixel coordinates (pixel i spans [i, i + 1)); NiN: 33.5. */
  first: number;
  /** The smallest input that gives one cell (NiN: 67 px): the window each cell reads. */
  window: number;
}

/** The {@link CellGeometry} of `model`'s layers before its global average pooling. */
export function cellGeometry(model: tfl.LayersModel): CellGeometry {
  const gap = model.layers.findIndex((l) => l.name === 'global_avg_pool');
  if (gap < 0) throw new Error(`${model.name} has no global_avg_pool layer: class maps need NiN's pooling head`);
  let stride = 1;
  let first = 0.5; // pixel 0's centre
  const steps: Array<{ k: number; s: number }> = [];
  for (const layer of model.layers.slice(0, gap)) {
    const c = layer.getConfig();
    const size = (c.kernelSize ?? c.poolSize) as number[] | undefined;
    if (size === undefined) continue; // dropout, activations: no change of place
    const [k, s] = [size[0], (c.strides as number[])[0]];
    if (c.padding === 'same') {
      if (s !== 1 || k % 2 === 0) throw new Error(`${layer.name}: a 'same' layer with stride ${s} and kernel ${k} shifts the map; class-map geometry needs stride 1 and an odd kernel`);
      continue; // centred: each output sits on its input
    }
    first += stride * (k - 1) / 2;
    stride *= s;
    steps.push({ k, s });
  }
  // One output cell needs k input cells at a valid layer, then (n - 1)·s + k for n outputs.
  const window = steps.reduceRight((n, { k, s }) => (n - 1) * s + k, 1);
  return { stride, first, window };
}

/**
 * How a mosaic's tiles lie on the network's input:
 * - `aligned`: each test image sits on the 67-px window one cell reads (the middle cell of its
 *   tile reads it as the network was trained to), and each tile is an odd number of whole
 *   cells (3×3 for 67-px images: a 96-px tile, 29 px of black between images). Every cell
 *   belongs to one tile.
 * - `packed`: the images side by side, as classMapMosaic built mosaics before 2026-12-05;
 *   cells fall across tile borders.
 */
export const MOSAIC_LAYOUTS = ['aligned', 'packed'] as const;
export type MosaicLayout = (typeof MOSAIC_LAYOUTS)[number];

/** A mosaic's place on the input. Tile t (row-major) owns the square from `origin + pitch · (row, column)`, `pitch` px wide. */
export interface MosaicPlan {
  layout: MosaicLayout;
  grid: number;
  /** Side of each test image, px. */
  resize: number;
  /** Side of the network's input, px. */
  inputSide: number;
  /** Side of each class map, cells. */
  mapSide: number;
  /** Where tile 0's square starts (px, continuous) and how wide each tile's square is. */
  origin: number;
  pitch: number;
  /** The input's black margin before the first tile's square (whole px), and each image's offset inside its square. */
  margin: number;
  inset: number;
  /** The picture: the input's square from `pictureStart`, `pictureSide` px wide; aligned, the cells' span, so a map stretched over it lies on its cells. */
  pictureStart: number;
  pictureSide: number;
  geometry: CellGeometry;
}

/** The fewest cells a tile of the aligned layout spans for `resize`-px images: the smallest odd number wider than the image. */
export function fewestTileCells(g: CellGeometry, resize: number): number {
  const cells = Math.floor(resize / g.stride) + 1;
  return cells % 2 === 0 ? cells + 1 : cells;
}

/**
 * Plans a `grid`×`grid` mosaic of `resize`-px images on a model of geometry `g`; aligned,
 * each tile spans `tileCells` cells a side (odd; default {@link fewestTileCells}, more leaves
 * more black between the images).
 */
export function planMosaic(g: CellGeometry, grid: number, resize: number, layout: MosaicLayout, tileCells?: number): MosaicPlan {
  positiveInt('grid', grid);
  positiveInt('resize', resize);
  oneOf('layout', layout, MOSAIC_LAYOUTS);
  if (tileCells !== undefined) {
    const fewest = fewestTileCells(g, resize);
    if (layout !== 'aligned') throw new ConfigError((n, nameOf) => `${n} applies to the aligned ${nameOf('layout')} only`, 'tileCells');
    if (!Number.isInteger(tileCells) || tileCells % 2 === 0 || tileCells < fewest || tileCells > 15) {
      throw new ConfigError((n) => `${n} must be an odd integer from ${fewest} (the fewest around a ${resize}-px image) to 15, got ${String(tileCells)}`, 'tileCells');
    }
  }
  if (layout === 'packed') {
    const side = grid * resize;
    if (side < g.window) throw new ConfigError((n) => `a ${grid}×${grid} mosaic of ${resize}-px tiles is ${side} px, smaller than the ${g.window} px NiN reads; raise ${n}`, 'resize');
    const mapSide = Math.floor((side - g.window) / g.stride) + 1;
    return { layout, grid, resize, inputSide: side, mapSide, origin: 0, pitch: resize, margin: 0, inset: 0, pictureStart: 0, pictureSide: side, geometry: g };
  }
  // An odd number of cells wider than the image: one cell at the tile's centre, and black around the image.
  const cells = tileCells ?? fewestTileCells(g, resize);
  const pitch = cells * g.stride;
  const mapSide = cells * grid;
  const inputSide = g.window + g.stride * (mapSide - 1);
  const origin = g.first - g.stride / 2;
  const centre0 = g.first + g.stride * (cells - 1) / 2; // tile 0's middle cell
  const imageStart = Math.round(centre0 - resize / 2);
  const inset = Math.floor((pitch - resize) / 2);
  const margin = imageStart - inset;
  const pictureStart = Math.floor(origin);
  return { layout, grid, resize, inputSide, mapSide, origin, pitch, margin, inset, pictureStart, pictureSide: pitch * grid, geometry: g };
}

/** Lays out `count` mosaics: xs [count · grid², resize, resize, 1], row by row, → [count, inputSide, inputSide, 1]. */
export function tileMosaics(plan: MosaicPlan, xs: tf.Tensor4D): tf.Tensor4D {
  const { grid, resize, pitch, inset, margin, inputSide } = plan;
  const count = xs.shape[0] / (grid * grid);
  if (!Number.isInteger(count) || xs.shape[1] !== resize || xs.shape[2] !== resize) {
    throw new Error(`tileMosaics: images [${xs.shape.join(', ')}] are not ${grid}² × ${resize}-px images`);
  }
  const after = inputSide - margin - grid * pitch;
  return tf.tidy(() => {
    const framed = tf.pad(xs, [[0, 0], [inset, pitch - resize - inset], [inset, pitch - resize - inset], [0, 0]]); // [n·g², p, p, 1]
    const rows = tf.reshape(tf.transpose(tf.reshape(framed, [count, grid, grid, pitch, pitch, 1]), [0, 1, 3, 2, 4, 5]), // [n, g, p, g, p, 1]
      [count, grid * pitch, grid * pitch, 1]); // NHWC
    return tf.pad(rows, [[0, 0], [margin, after], [margin, after], [0, 0]]) as tf.Tensor4D; // [n, side, side, 1]
  });
}

/** The tile (row-major index) whose square holds the input point (y, x) px; a point outside the grid counts for the nearest tile. */
export function tileAt(plan: MosaicPlan, y: number, x: number): number {
  const along = (v: number) => Math.min(plan.grid - 1, Math.max(0, Math.floor((v - plan.origin) / plan.pitch)));
  return along(y) * plan.grid + along(x);
}

export interface ClassMapMosaic {
  /** The picture of the test images, grey 0–255, `side`×`side`: the part of the input the maps cover (see {@link MosaicPlan}). */
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
  /** How the tiles lie on the input (see {@link MOSAIC_LAYOUTS}). @default 'aligned' */
  layout: MosaicLayout;
  /** Which taps of the kernels read the mosaic (see {@link TAP_CHOICES}). @default 'trained' */
  taps: Taps;
  /** Aligned layout: cells a tile spans a side, odd (see {@link planMosaic}); undefined: the fewest around the image (3 at 67 px). @default undefined */
  tileCells?: number;
}

const MOSAIC_DEFAULTS: Readonly<Omit<MosaicOptions, 'resize'>> = Object.freeze({ grid: 3, first: 0, layout: 'aligned', taps: 'trained', tileCells: undefined });

/**
 * The trained model's class maps for a `grid`×`grid` mosaic of test images, each resized to the
 * training size, read by the same weights as one image. With the default `aligned` layout and
 * `trained` taps each image is read as the network was trained to read it and each cell is drawn
 * over the place it looks at (packed 4×4, up to 23 px away); the picture has black between the
 * images. How much each helps the maps point: docs/class-maps.md.
 */
export function classMapMosaic(model: tfl.LayersModel, config: Partial<NinConfig>, test: FashionMnistSplit,
  options: Partial<MosaicOptions> & { resize: number }): ClassMapMosaic {
  const { grid, resize, first, layout, taps, tileCells } = withDefaults<MosaicOptions>('mosaic', options, { ...MOSAIC_DEFAULTS, resize: options.resize });
  positiveInt('grid', grid);
  positiveInt('first', first, 0);
  oneOf('taps', taps, TAP_CHOICES);
  const n = grid * grid;
  if (first + n > test.count) throw new Error(`a ${grid}×${grid} mosaic from test image ${first} needs ${first + n} test images, there are ${test.count}`);
  const plan = planMosaic(cellGeometry(model), grid, resize, layout, tileCells);
  const big = withInputSize(model, config, plan.inputSide, taps);
  const subset = sliceSplit(test, first, n);
  const { value } = batches(subset, { batchSize: n, resize, shuffle: false, seed: 0, epoch: 0 }).next();
  const [picture, maps] = tf.tidy(() => {
    const input = tileMosaics(plan, value.xs); // [1, inputSide, inputSide, 1]
    const { pictureStart: at, pictureSide: side } = plan;
    return [tf.slice(input, [0, at, at, 0], [1, side, side, 1]), classMaps(big, input)];
  });
  const result = {
    image: Uint8Array.from(picture.dataSync(), (v) => Math.round(Math.min(1, Math.max(0, v)) * 255)),
    side: plan.pictureSide, maps: maps.dataSync() as Float32Array, mapSide: maps.shape[1], classes: maps.shape[3],
    labels: Array.from(value.ys.dataSync() as Int32Array), predicted: predict(model, subset, resize),
  };
  tf.dispose([picture, maps, value.xs, value.ys]);
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
