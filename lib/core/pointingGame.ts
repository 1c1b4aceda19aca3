/**
 * The pointing game (Zhang et al., 2016, "Top-down neural attention by excitation backprop"):
 * how well NiN's class maps (lib/core/classMaps.ts) point. Test images are laid out in a
 * mosaic and read as one image; for each class present in the mosaic, its map's peak is a
 * *hit* when it falls on a tile of that class.
 *
 * Chance is what pointing at a tile drawn uniformly would score: for each (mosaic, class
 * present) pair, the fraction of the mosaic's tiles that are of that class, averaged over the
 * pairs (about 0.12 for 4×4 mosaics of random test images, 0.16 for 3×3).
 *
 * Browser-safe: tfjs and lib/core only. Measurements: docs/class-maps.md.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { cellGeometry, classMaps, MOSAIC_LAYOUTS, MosaicLayout, MosaicPlan, planMosaic, TAP_CHOICES, Taps, tileAt, tileMosaics, withInputSize } from './classMaps';
import { FASHION_MNIST_CLASSES, FashionMnistSplit, firstBatch } from './fashionMnist';
import { modelInputSize } from './evaluate';
import { NinConfig } from './model';
import { mulberry32 } from './random';
import { ConfigError, oneOf, positiveInt, withDefaults } from './validate';

/**
 * What is compared at each place of the maps: `map`, the class's own map as the last block
 * outputs it; `contrast`, that map minus the mean of all classes' maps there; `softmax`, the
 * class's probability when the ten maps' values at that place are read as logits (the maps'
 * means are the logits of the whole image). The two last remove what lights every map at a
 * place, as Zhang et al.'s contrastive attention does.
 */
export const POINT_SCORES = ['softmax', 'contrast', 'map'] as const;
export type PointScore = (typeof POINT_SCORES)[number];

/**
 * Where a map's peak is: `cell`, the centre of its largest cell's receptive field
 * ({@link CellGeometry}: where that cell looks); `drawn`, the brightest pixel of the map as
 * classMapChart draws it, upsampled bilinearly and stretched over the picture. In the aligned
 * layout the two agree to a pixel; in the packed one the drawing places a cell up to 23 px (4×4)
 * away from where it looks. (A bilinear upsampling placed on the cells' centres instead
 * peaks exactly on the largest cell: its values are weighted means of the cells around them.)
 * Ties go to the first in reading order.
 */
export const PEAK_CHOICES = ['cell', 'drawn'] as const;
export type Peak = (typeof PEAK_CHOICES)[number];

/** Which test images fill a mosaic: `any` (drawn uniformly), `distinct` (no class twice; grid² ≤ the classes). */
export const DRAW_CHOICES = ['any', 'distinct'] as const;
export type Draw = (typeof DRAW_CHOICES)[number];

export interface PointingGameConfig {
  /** Tiles per side of each mosaic, 2–8. @default 4 */
  grid: number;
  /** Mosaics scored, 1–10000. @default 50 */
  mosaics: number;
  /** Seed of the draw of test images (mulberry32); the same seed draws the same mosaics. @default 1 */
  seed: number;
  /** Side of each test image in the mosaic, 28–224 px; undefined: the model's input size. @default undefined */
  tile?: number;
  /** How the tiles lie on the input (lib/core/classMaps.ts's MOSAIC_LAYOUTS). @default 'aligned' */
  layout: MosaicLayout;
  /** Aligned layout: cells each tile spans a side, odd; undefined: the fewest around the image (3 at 67 px: a 96-px tile). @default undefined */
  tileCells?: number;
  /** Which kernel taps read the mosaic (lib/core/classMaps.ts's TAP_CHOICES). @default 'trained' */
  taps: Taps;
  /** What is compared at each place ({@link POINT_SCORES}). @default 'softmax' */
  score: PointScore;
  /** How the peak is located ({@link PEAK_CHOICES}). @default 'cell' */
  peak: Peak;
  /** Which test images fill a mosaic ({@link DRAW_CHOICES}). @default 'any' */
  draw: Draw;
}

export const POINTING_GAME_DEFAULTS: Readonly<PointingGameConfig> = Object.freeze({
  grid: 4, mosaics: 50, seed: 1, tile: undefined, layout: 'aligned', tileCells: undefined, taps: 'trained', score: 'softmax', peak: 'cell', draw: 'any',
});

/** Largest grid side: an 8×8 aligned mosaic of 224-px tiles is already a 2,000-px input. */
const MAX_GRID = 8;

/** Fills defaults and checks every field; throws a ConfigError naming the first bad one. */
export function resolvePointingGameConfig(partial: Partial<PointingGameConfig> = {}): PointingGameConfig {
  const c = withDefaults('pointing game', partial, POINTING_GAME_DEFAULTS);
  positiveInt('grid', c.grid, 2, MAX_GRID);
  positiveInt('mosaics', c.mosaics, 1, 10_000);
  positiveInt('seed', c.seed, 0);
  if (c.tile !== undefined) positiveInt('tile', c.tile, 28, 224);
  oneOf('layout', c.layout, MOSAIC_LAYOUTS);
  if (c.tileCells !== undefined) {
    // Its lower bound depends on the image and the model: planMosaic checks it.
    if (c.layout !== 'aligned') throw new ConfigError((n, nameOf) => `${n} applies to the aligned ${nameOf('layout')} only`, 'tileCells');
    positiveInt('tileCells', c.tileCells, 1, 15);
    if (c.tileCells % 2 === 0) throw new ConfigError((n) => `${n} must be odd (a cell at each tile's centre), got ${c.tileCells}`, 'tileCells');
  }
  oneOf('taps', c.taps, TAP_CHOICES);
  oneOf('score', c.score, POINT_SCORES);
  oneOf('peak', c.peak, PEAK_CHOICES);
  oneOf('draw', c.draw, DRAW_CHOICES);
  return c;
}

/** One class's share of the game. */
export interface ClassPointing {
  label: number;
  name: string;
  /** Mosaics it was present in, and in how many of them its peak fell on one of its tiles. */
  present: number;
  hits: number;
  /** hits / present; null when it was never present. */
  hitRate: number | null;
  /** The mean fraction of tiles it had where present; null when never present. */
  chance: number | null;
}

export interface PointingGameResult {
  /** The settings played, `tile` filled in. */
  config: PointingGameConfig & { tile: number };
  /** (mosaic, class present) pairs scored, and hits among them. */
  pairs: number;
  hits: number;
  hitRate: number;
  /** For each pair, the fraction of the mosaic's tiles of that class, averaged. */
  chance: number;
  perClass: ClassPointing[];
  /** Side of the network's input and of each map. */
  inputSide: number;
  mapSide: number;
}

/** A map's peak, in input pixels (continuous coordinates). */
export interface Point {
  y: number;
  x: number;
}

/**
 * What is compared for each class at each place: [mapSide², classes] row-major from the last
 * block's maps in the same layout ({@link PointScore}).
 */
export function scoreMaps(maps: Float32Array, classes: number, score: PointScore): Float32Array {
  if (score === 'map') return maps;
  const out = new Float32Array(maps.length);
  for (let p = 0; p < maps.length; p += classes) {
    const at = maps.subarray(p, p + classes);
    if (score === 'contrast') {
      const mean = at.reduce((a, v) => a + v, 0) / classes;
      for (let k = 0; k < classes; k++) out[p + k] = at[k] - mean;
    } else {
      const max = at.reduce((a, v) => Math.max(a, v), -Infinity);
      let sum = 0;
      for (let k = 0; k < classes; k++) sum += (out[p + k] = Math.exp(at[k] - max));
      for (let k = 0; k < classes; k++) out[p + k] /= sum;
    }
  }
  return out;
}

/** The peak of class k's values in `scores` ([mapSide², classes]) on the input of `plan`, located as `peak` says. */
export function peakOf(scores: Float32Array, plan: MosaicPlan, classes: number, k: number, peak: Peak): Point {
  const { mapSide, geometry: g } = plan;
  const at = (i: number, j: number) => scores[(i * mapSide + j) * classes + k];
  let best = -Infinity;
  let where: Point = { y: 0, x: 0 };
  if (peak === 'cell') {
    const place = (cell: number) => g.first + g.stride * cell;
    for (let i = 0; i < mapSide; i++) {
      for (let j = 0; j < mapSide; j++) {
        if (at(i, j) > best) [best, where] = [at(i, j), { y: place(i), x: place(j) }];
      }
    }
    return where;
  }
  // As lib/core/plots.ts's heat overlay samples a map: picture pixel p at cell (p + 0.5) · mapSide / side - 0.5, clamped.
  const side = plan.pictureSide;
  const axis = Array.from({ length: side }, (_, p) => {
    const f = Math.min(mapSide - 1, Math.max(0, (p + 0.5) * mapSide / side - 0.5));
    const c0 = Math.floor(f);
    return { c0, c1: Math.min(mapSide - 1, c0 + 1), d: f - c0 };
  });
  for (let y = 0; y < side; y++) {
    const { c0: i0, c1: i1, d: dy } = axis[y];
    for (let x = 0; x < side; x++) {
      const { c0: j0, c1: j1, d: dx } = axis[x];
      const v = (1 - dy) * ((1 - dx) * at(i0, j0) + dx * at(i0, j1)) + dy * ((1 - dx) * at(i1, j0) + dx * at(i1, j1));
      if (v > best) [best, where] = [v, { y: plan.pictureStart + y + 0.5, x: plan.pictureStart + x + 0.5 }];
    }
  }
  return where;
}

/** One mosaic's pointing: for each class present (ascending), its peak's tile and whether that tile is of its class. */
export interface MosaicPointing {
  label: number;
  tile: number;
  hit: boolean;
  /** The fraction of the mosaic's tiles of this class. */
  chance: number;
}

/**
 * Scores one mosaic: `maps` [mapSide², classes] as the last block outputs them, `labels` its
 * tiles' classes row by row, `plan` where its tiles lie.
 */
export function pointMosaic(maps: Float32Array, labels: ArrayLike<number>, plan: MosaicPlan, classes: number,
  options: Pick<PointingGameConfig, 'score' | 'peak'>): MosaicPointing[] {
  const tiles = Array.from(labels);
  if (tiles.length !== plan.grid * plan.grid) throw new Error(`pointMosaic: ${tiles.length} labels for a ${plan.grid}×${plan.grid} mosaic`);
  if (maps.length !== plan.mapSide * plan.mapSide * classes) throw new Error(`pointMosaic: ${maps.length} map values for ${plan.mapSide}² cells of ${classes} classes`);
  const scores = scoreMaps(maps, classes, options.score);
  return [...new Set(tiles)].sort((a, b) => a - b).map((label) => {
    const { y, x } = peakOf(scores, plan, classes, label, options.peak);
    const tile = tileAt(plan, y, x);
    return { label, tile, hit: tiles[tile] === label, chance: tiles.filter((t) => t === label).length / tiles.length };
  });
}

/** Largest input the game reads, px: a 2,048-px image's first block alone holds 96 MB of activations. */
const MAX_INPUT_SIDE = 2048;

/** Mosaics read per forward pass: 8 of a 4×4 aligned mosaic's 419 px, fewer of larger ones (about 1.4 M pixels a pass). */
const mosaicsPerPass = (side: number) => Math.max(1, Math.floor(8 * (419 / side) ** 2));

/**
 * Plays the pointing game with `model` (a NiN with global average pooling; `config` rebuilds
 * it at the mosaic's size, as for {@link withInputSize}) on mosaics of `test` images. Leaves no
 * tensor behind.
 */
export function pointingGame(model: tfl.LayersModel, config: Partial<NinConfig>, test: FashionMnistSplit,
  options: Partial<PointingGameConfig> = {}, names: readonly string[] = FASHION_MNIST_CLASSES): PointingGameResult {
  const c = resolvePointingGameConfig(options);
  const tile = c.tile ?? modelInputSize(model);
  const n = c.grid * c.grid;
  if (n > test.count) throw new ConfigError((g) => `a ${c.grid}×${c.grid} mosaic needs ${n} test images, there are ${test.count}; lower ${g}`, 'grid');
  const present = new Set(test.labels).size;
  if (c.draw === 'distinct' && n > present) {
    throw new ConfigError((g, nameOf) => `${nameOf('draw')} distinct needs a class per tile: a ${c.grid}×${c.grid} mosaic has ${n} tiles and the test images ` +
      `hold ${present} classes; lower ${g}`, 'grid');
  }
  const plan = planMosaic(cellGeometry(model), c.grid, tile, c.layout, c.tileCells);
  if (plan.inputSide > MAX_INPUT_SIDE) {
    throw new ConfigError((g, nameOf) => `a ${c.grid}×${c.grid} mosaic of ${tile}-px images ${c.layout === 'aligned' ? `on ${plan.pitch}-px tiles ` : ''}is a ` +
      `${plan.inputSide}-px input; the most is ${MAX_INPUT_SIDE}: lower ${g}, ${nameOf('tile')} or ${nameOf('tileCells')}`, 'grid');
  }
  const draws = drawMosaics(test, c);
  const big = withInputSize(model, config, plan.inputSide, c.taps);
  const classes = big.outputs[0].shape[1] as number;
  const tally = Array.from({ length: classes }, () => ({ present: 0, hits: 0, chance: 0 }));
  try {
    const perPass = mosaicsPerPass(plan.inputSide);
    for (let start = 0; start < draws.length; start += perPass) {
      const chunk = draws.slice(start, start + perPass);
      const split = gather(test, chunk.flat());
      const batch = firstBatch(split, split.count, tile)!;
      const maps = tf.tidy(() => classMaps(big, tileMosaics(plan, batch.xs))); // [chunk, mapSide, mapSide, classes]
      const data = maps.dataSync() as Float32Array;
      tf.dispose([maps, batch.xs, batch.ys]);
      const per = plan.mapSide * plan.mapSide * classes;
      chunk.forEach((indices, m) => {
        for (const p of pointMosaic(data.subarray(m * per, (m + 1) * per), indices.map((i) => test.labels[i]), plan, classes, c)) {
          tally[p.label].present++;
          tally[p.label].hits += Number(p.hit);
          tally[p.label].chance += p.chance;
        }
      });
    }
  } finally {
    big.dispose();
  }
  const pairs = tally.reduce((a, t) => a + t.present, 0);
  const hits = tally.reduce((a, t) => a + t.hits, 0);
  return {
    config: { ...c, tile }, pairs, hits, hitRate: hits / pairs, chance: tally.reduce((a, t) => a + t.chance, 0) / pairs,
    perClass: tally.map((t, label) => ({
      label, name: names[label] ?? `class ${label}`, present: t.present, hits: t.hits,
      hitRate: t.present === 0 ? null : t.hits / t.present, chance: t.present === 0 ? null : t.chance / t.present,
    })),
    inputSide: plan.inputSide, mapSide: plan.mapSide,
  };
}

/** The test images of each mosaic, row by row: grid² distinct images (and classes, when `distinct`), drawn with `seed`. */
function drawMosaics(test: FashionMnistSplit, c: PointingGameConfig): number[][] {
  const random = mulberry32(c.seed);
  const n = c.grid * c.grid;
  return Array.from({ length: c.mosaics }, () => {
    const picked = new Set<number>();
    const classes = new Set<number>();
    while (picked.size < n) {
      const i = Math.floor(random() * test.count);
      if (picked.has(i) || (c.draw === 'distinct' && classes.has(test.labels[i]))) continue;
      picked.add(i);
      classes.add(test.labels[i]);
    }
    return [...picked];
  });
}

/** The examples `indices` of `split`, in that order, as a split of their own. */
function gather(split: FashionMnistSplit, indices: number[]): FashionMnistSplit {
  const pixels = split.height * split.width;
  const images = new Uint8Array(indices.length * pixels);
  indices.forEach((i, n) => images.set(split.images.subarray(i * pixels, (i + 1) * pixels), n * pixels));
  return { ...split, images, labels: Uint8Array.from(indices, (i) => split.labels[i]), count: indices.length };
}
