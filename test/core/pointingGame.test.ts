/**
 * The pointing game: its settings are checked in one place, a hand-built mosaic of maps scores
 * what it must (hits, chance, the softmax's and the raw map's different answers), the two ways
 * of locating a peak agree where they should, and a whole game on a model whose maps are flat
 * gives the one answer flat maps can give, leaving no tensor behind.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { bandSplit } from '../fixtures';
import { selectBackend } from '../../lib/kernels/backend';
import { cellGeometry, planMosaic, tileAt } from '../../lib/core/classMaps';
import { nin } from '../../lib/core/model';
import {
  peakOf, pointingGame, pointMosaic, POINTING_GAME_DEFAULTS, resolvePointingGameConfig, scoreMaps,
} from '../../lib/core/pointingGame';
import { ConfigError } from '../../lib/core/validate';

before(async () => {
  await selectBackend('wasm');
});

const NIN_GEOMETRY = { stride: 32, first: 33.5, window: 67 };

test('resolvePointingGameConfig: the documented defaults, and one error naming each bad field', () => {
  assert.deepEqual(resolvePointingGameConfig(), { ...POINTING_GAME_DEFAULTS });
  assert.deepEqual(resolvePointingGameConfig({ grid: 3, seed: undefined }), { ...POINTING_GAME_DEFAULTS, grid: 3 });
  const refused: Array<[object, RegExp]> = [
    [{ grid: 1 }, /^grid must be an integer from 2 to 8, got 1$/],
    [{ mosaics: 0 }, /^mosaics must be an integer from 1 to 10000, got 0$/],
    [{ seed: -1 }, /^seed must be an integer >= 0/],
    [{ tile: 20 }, /^tile must be an integer from 28 to 224, got 20$/],
    [{ layout: 'diagonal' }, /^layout must be one of aligned, packed, got "diagonal"$/],
    [{ tileCells: 4 }, /^tileCells must be odd/],
    [{ tileCells: 5, layout: 'packed' }, /^tileCells applies to the aligned layout only$/],
    [{ taps: 'some' }, /^taps must be one of trained, all/],
    [{ score: 'max' }, /^score must be one of softmax, contrast, map/],
    [{ peak: 'bilinear' }, /^peak must be one of cell, drawn/],
    [{ draw: 'unique' }, /^draw must be one of any, distinct/],
    [{ gird: 4 }, /unknown pointing game option "gird"/],
  ];
  for (const [given, message] of refused) {
    assert.throws(() => resolvePointingGameConfig(given), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(given));
  }
});

test("cellGeometry: NiN's cells are 32 px apart, cell 0 centred on a 67-px input's centre, and their count matches featureMapSize", () => {
  const model = nin({ inputSize: 67 });
  assert.deepEqual(cellGeometry(model), NIN_GEOMETRY);
  assert.throws(() => cellGeometry(nin({ inputSize: 67, head: 'dense' })), /no global_avg_pool/);
  model.dispose();
});

test('planMosaic: aligned, each 67-px image sits on one cell\'s 67-px window and each tile owns 3×3 cells; packed, the images side by side', () => {
  const a = planMosaic(NIN_GEOMETRY, 4, 67, 'aligned');
  assert.equal(a.pitch, 96);
  assert.equal(a.mapSide, 12);
  assert.equal(a.inputSide, 67 + 32 * 11); // the smallest input with 12 cells
  // Image t starts at margin + 96t + inset; cell 3t + 1 reads [32 (3t + 1), 32 (3t + 1) + 67).
  for (let t = 0; t < 4; t++) assert.equal(a.margin + 96 * t + a.inset, 32 * (3 * t + 1));
  for (let j = 0; j < 12; j++) {
    const centre = 33.5 + 32 * j;
    assert.equal(Math.floor((centre - a.origin) / a.pitch), Math.floor(j / 3), `cell ${j}`);
  }
  assert.equal(a.pictureSide, 384);
  assert.equal(planMosaic(NIN_GEOMETRY, 4, 67, 'aligned', 5).pitch, 160);
  assert.throws(() => planMosaic(NIN_GEOMETRY, 4, 67, 'aligned', 1), /tileCells must be an odd integer from 3/);
  const p = planMosaic(NIN_GEOMETRY, 4, 67, 'packed');
  assert.deepEqual([p.inputSide, p.mapSide, p.pitch, p.origin, p.pictureSide], [268, 7, 67, 0, 268]);
  assert.throws(() => planMosaic(NIN_GEOMETRY, 2, 30, 'packed'), /60 px, smaller than the 67 px NiN reads/);
});

/** Maps of a 2×2 aligned mosaic (6×6 cells, 10 classes), all 0 but the cells given as [row, column, class, value]. */
function handMaps(cells: Array<[number, number, number, number]>): Float32Array {
  const maps = new Float32Array(6 * 6 * 10);
  for (const [i, j, k, v] of cells) maps[(i * 6 + j) * 10 + k] = v;
  return maps;
}

test('pointMosaic: a hand-built mosaic scores the hits and the chance it must', () => {
  const plan = planMosaic(NIN_GEOMETRY, 2, 67, 'aligned'); // tiles: cells 0–2 and 3–5 each way
  const labels = [3, 1, 3, 7]; // row by row
  const maps = handMaps([
    [4, 1, 3, 2], // class 3 peaks in tile 2 (row 1, column 0): a 3
    [0, 5, 1, 2], // class 1 peaks in tile 1: the 1
    [1, 1, 7, 2], // class 7 peaks in tile 0: a 3, a miss
  ]);
  for (const score of ['map', 'softmax'] as const) {
    const got = pointMosaic(maps, labels, plan, 10, { score, peak: 'cell' });
    assert.deepEqual(got, [
      { label: 1, tile: 1, hit: true, chance: 0.25 },
      { label: 3, tile: 2, hit: true, chance: 0.5 },
      { label: 7, tile: 0, hit: false, chance: 0.25 },
    ], score);
  }
  assert.throws(() => pointMosaic(maps, [1, 2, 3], plan, 10, { score: 'map', peak: 'cell' }), /3 labels for a 2×2 mosaic/);
});

test('pointMosaic: where every class lights up, the raw map points there and the softmax at the place that is the class\'s own', () => {
  const plan = planMosaic(NIN_GEOMETRY, 2, 67, 'aligned');
  const labels = [3, 1, 3, 7];
  const everything = Array.from({ length: 10 }, (_, k) => [1, 1, k, k === 3 ? 12 : 10] as [number, number, number, number]);
  const maps = handMaps([...everything, [4, 4, 7, 5]]); // tile 0 lights every map; tile 3 only class 7's, less
  const at = (score: 'map' | 'softmax' | 'contrast') => pointMosaic(maps, labels, plan, 10, { score, peak: 'cell' }).find((p) => p.label === 7)!;
  assert.deepEqual([at('map').tile, at('map').hit], [0, false]);
  assert.deepEqual([at('softmax').tile, at('softmax').hit], [3, true]);
  assert.deepEqual([at('contrast').tile, at('contrast').hit], [3, true]);
});

test('scoreMaps: softmax sums to 1 at each place; contrast sums to 0', () => {
  const maps = Float32Array.from({ length: 4 * 10 }, (_, i) => (i * 37) % 11);
  const soft = scoreMaps(maps, 10, 'softmax');
  const contrast = scoreMaps(maps, 10, 'contrast');
  for (let p = 0; p < 4; p++) {
    assert.ok(Math.abs(soft.subarray(p * 10, p * 10 + 10).reduce((a, v) => a + v, 0) - 1) < 1e-6);
    assert.ok(Math.abs(contrast.subarray(p * 10, p * 10 + 10).reduce((a, v) => a + v, 0)) < 1e-5);
  }
  assert.equal(scoreMaps(maps, 10, 'map'), maps);
});

test('peakOf: aligned, the drawn peak is on the largest cell\'s tile, within a pixel of its centre inside the map', () => {
  const plan = planMosaic(NIN_GEOMETRY, 2, 67, 'aligned');
  for (const [i, j] of [[1, 1], [2, 3], [4, 1], [3, 4], [0, 0], [5, 2]]) {
    const scores = handMaps([[i, j, 6, 1]]);
    const cell = peakOf(scores, plan, 10, 6, 'cell');
    const drawn = peakOf(scores, plan, 10, 6, 'drawn');
    assert.deepEqual(cell, { y: 33.5 + 32 * i, x: 33.5 + 32 * j });
    assert.equal(tileAt(plan, drawn.y, drawn.x), tileAt(plan, cell.y, cell.x), `cell (${i}, ${j})`);
    // An edge cell's drawing is clamped out to the picture's edge: a plateau, whose first pixel wins.
    const inside = [i, j].every((c) => c > 0 && c < 5);
    if (inside) assert.ok(Math.abs(drawn.y - cell.y) <= 1 && Math.abs(drawn.x - cell.x) <= 1, `cell (${i}, ${j}): drawn at ${JSON.stringify(drawn)}`);
  }
});

test('pointingGame on flat maps: every peak ties and falls on the first tile, so exactly one class of each mosaic hits; no tensor left', () => {
  const model = nin({ inputSize: 67, seed: 4 });
  const last = model.getLayer('block4_conv2'); // 1×1, 10 → 10, ReLU: the maps
  const [kernel, bias] = last.getWeights();
  const flat = [tf.zerosLike(kernel), tf.onesLike(bias)];
  last.setWeights(flat); // every map is 1 everywhere
  tf.dispose([...flat]);
  const test = bandSplit(40);
  const before = tf.memory().numTensors;
  for (const score of ['softmax', 'map'] as const) {
    const r = pointingGame(model, {}, test, { grid: 3, mosaics: 6, seed: 2, score });
    assert.equal(tf.memory().numTensors, before, `${score}: tensors left`);
    assert.equal(r.hits, 6, `${score}: one hit per mosaic, tile 0's class`);
    assert.equal(r.hitRate, 6 / r.pairs);
    assert.equal(r.perClass.reduce((a, k) => a + k.present, 0), r.pairs);
    const chanceFromClasses = r.perClass.reduce((a, k) => a + (k.chance ?? 0) * k.present, 0) / r.pairs;
    assert.ok(Math.abs(chanceFromClasses - r.chance) < 1e-12);
    assert.deepEqual([r.inputSide, r.mapSide, r.config.tile], [323, 9, 67]);
  }
  model.dispose();
});

test('pointingGame: the seed fixes the mosaics, distinct draws no class twice, and impossible games are refused', () => {
  const model = nin({ inputSize: 67, seed: 5, init: 'he' });
  const test = bandSplit(30);
  const before = tf.memory().numTensors;
  const a = pointingGame(model, {}, test, { grid: 2, mosaics: 5, seed: 7, layout: 'packed', taps: 'all', score: 'map' });
  const b = pointingGame(model, {}, test, { grid: 2, mosaics: 5, seed: 7, layout: 'packed', taps: 'all', score: 'map' });
  assert.deepEqual(a, b);
  const distinct = pointingGame(model, {}, test, { grid: 3, mosaics: 4, draw: 'distinct' });
  assert.equal(distinct.pairs, 4 * 9, 'nine classes in each mosaic');
  assert.ok(Math.abs(distinct.chance - 1 / 9) < 1e-12);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => pointingGame(model, {}, test, { grid: 4, draw: 'distinct' }), /draw distinct needs a class per tile: a 4×4 mosaic has 16 tiles/);
  assert.throws(() => pointingGame(model, {}, bandSplit(8), { grid: 3 }), /needs 9 test images, there are 8/);
  assert.throws(() => pointingGame(model, {}, bandSplit(64), { grid: 8, tile: 224, tileCells: 15 }), /is a 3875-px input; the most is 2048: lower grid, tile or tileCells/);
  model.dispose();
});
