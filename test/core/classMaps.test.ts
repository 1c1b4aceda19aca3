/**
 * Class maps: the last block's maps must average to the model's scores (that is what global
 * average pooling does), a larger NiN must carry the same weights, the mosaic must put each
 * test image in its tile, and the chart must draw one panel per class.
 */
import { decode as decodePng } from 'fast-png';
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { bandSplit } from '../fixtures';
import { selectBackend } from '../../lib/kernels/backend';
import { CLASS_MAP_CHART_WIDTH, classMapChart, classMapMosaic, classMaps, mapOf, shrinkGrey, withInputSize } from '../../lib/core/classMaps';
import { FASHION_MNIST_CLASSES } from '../../lib/core/fashionMnist';
import { featureMapSize, nin } from '../../lib/core/model';
import { heatOverlayPngDataUrl, vegaLiteToSvg } from '../../lib/core/plots';

before(async () => {
  await selectBackend('wasm');
});

test('classMaps: the spatial mean of each map is the class score the model outputs', () => {
  for (const inputSize of [67, 131, 224]) {
    const model = nin({ inputSize, seed: 3, init: 'he' });
    const xs = tf.randomUniform([2, inputSize, inputSize, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const maps = classMaps(model, xs);
    const side = featureMapSize(inputSize);
    assert.deepEqual(maps.shape, [2, side, side, 10]);
    const fromMaps = tf.mean(maps, [1, 2]);
    const scores = model.predict(xs) as tf.Tensor;
    const diff = tf.max(tf.abs(tf.sub(fromMaps, scores))).dataSync()[0];
    assert.ok(diff < 1e-5, `${inputSize} px: mean of the maps differs from the scores by ${diff}`);
    assert.ok(tf.min(maps).dataSync()[0] >= 0, 'maps are ReLU outputs');
    tf.dispose([xs, maps, fromMaps, scores]);
    model.dispose();
  }
});

test('classMaps refuses a model without the pooling head', () => {
  const dense = nin({ inputSize: 67, head: 'dense' });
  const xs = tf.zeros([1, 67, 67, 1]) as tf.Tensor4D;
  assert.throws(() => classMaps(dense, xs), /no global_avg_pool layer/);
  xs.dispose();
  dense.dispose();
});

test('withInputSize: a larger NiN with the same weights', () => {
  const model = nin({ inputSize: 67, seed: 1 });
  const big = withInputSize(model, {}, 201);
  const [a, b] = [model.getWeights(), big.getWeights()];
  assert.equal(a.length, b.length);
  a.forEach((w, i) => assert.deepEqual(Array.from(w.dataSync()), Array.from(b[i].dataSync())));
  assert.deepEqual(big.inputs[0].shape, [null, 201, 201, 1]);
  model.dispose();
  big.dispose();
});

test('classMapMosaic: tiles in reading order, maps of the mosaic, predictions of each image alone; no tensor left', () => {
  const test = bandSplit(12);
  const model = nin({ inputSize: 67, seed: 2, init: 'he' });
  const before = tf.memory().numTensors;
  // The layout mosaics had before 2026-12-05 (images side by side, every tap), still on offer.
  const m = classMapMosaic(model, {}, test, { grid: 2, resize: 67, first: 1, layout: 'packed', taps: 'all' });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(m.side, 134);
  assert.equal(m.mapSide, featureMapSize(134));
  assert.equal(m.maps.length, m.mapSide * m.mapSide * 10);
  assert.deepEqual(m.labels, Array.from(test.labels.subarray(1, 5)));
  assert.equal(m.predicted.length, 4);
  // Tile (row 1, column 0) is test image 1 + 2; its centre pixel is that image's centre, resized.
  const centre = test.images[(1 + 2) * 28 * 28 + 14 * 28 + 14];
  assert.ok(Math.abs(m.image[(67 + 33) * 134 + 33] - centre) <= 40, `tile pixel ${m.image[(67 + 33) * 134 + 33]} vs image ${centre}`);
  assert.throws(() => classMapMosaic(model, {}, test, { grid: 4, resize: 67 }), /needs 16 test images, there are 12/);
  model.dispose();
});

test('classMapMosaic, aligned (the default): each image on one cell\'s window with black between, the picture the span of the cells', () => {
  const test = bandSplit(12);
  const model = nin({ inputSize: 67, seed: 2, init: 'he' });
  const before = tf.memory().numTensors;
  const m = classMapMosaic(model, {}, test, { grid: 2, resize: 67, first: 1 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(m.mapSide, 6, '3×3 cells a tile');
  assert.equal(m.side, 6 * 32, 'the picture spans the cells, 32 px each, so a map stretched over it lies on them');
  assert.equal(m.maps.length, 6 * 6 * 10);
  assert.deepEqual(m.labels, Array.from(test.labels.subarray(1, 5)));
  // Tile (row 1, column 0) is test image 3; its centre (pixel 33 of 67) is at picture pixel (96 + 48, 48).
  const centre = test.images[3 * 28 * 28 + 14 * 28 + 14];
  assert.ok(Math.abs(m.image[(96 + 48) * m.side + 48] - centre) <= 40, `tile pixel ${m.image[(96 + 48) * m.side + 48]} vs image ${centre}`);
  assert.equal(m.image[5 * m.side + 5], 0, 'black around the images');
  assert.equal(m.image[(96 + 48) * m.side + 96 + 2], 0, 'black between them');
  assert.throws(() => classMapMosaic(model, {}, test, { grid: 2, resize: 67, layout: 'packed', tileCells: 5 }), /tileCells applies to the aligned layout only/);
  assert.throws(() => classMapMosaic(model, {}, test, { grid: 2, resize: 67, taps: 'most' as 'all' }), /taps must be one of trained, all/);
  model.dispose();
});

test('withInputSize with trained taps: the last block keeps only its centre tap (the one a 67-px map of 1×1 reaches), and the 67-px scores do not change', () => {
  const model = nin({ inputSize: 67, seed: 6, init: 'he' });
  const copy = withInputSize(model, {}, 67, 'trained');
  const xs = tf.randomUniform([3, 67, 67, 1], 0, 1, 'float32', 8) as tf.Tensor4D;
  const [a, b] = [model.predict(xs) as tf.Tensor, copy.predict(xs) as tf.Tensor];
  assert.ok(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] < 1e-6, 'the zeroed taps only ever met padding');
  const big = withInputSize(model, {}, 131, 'trained');
  const kernel = big.getLayer('block4_conv0').getWeights()[0].arraySync() as number[][][][]; // [3, 3, 384, 10]
  const stored = model.getLayer('block4_conv0').getWeights()[0].arraySync() as number[][][][];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const abs = kernel[i][j].flat().reduce((s, v) => s + Math.abs(v), 0);
      if (i === 1 && j === 1) assert.deepEqual(kernel[i][j], stored[i][j]);
      else assert.equal(abs, 0, `tap (${i}, ${j})`);
    }
  }
  // block3's 3×3 convolution reads a 3×3 map at 67 px: every tap was reached, none zeroed.
  assert.deepEqual(big.getLayer('block3_conv0').getWeights()[0].arraySync(), model.getLayer('block3_conv0').getWeights()[0].arraySync());
  tf.dispose([xs, a, b]);
  [model, copy, big].forEach((m) => m.dispose());
});

test('heat overlay: transparent where the map is 0, red-yellow where it peaks', () => {
  const grey = new Uint8Array(16).fill(100);
  const map = Float32Array.from([0, 0, 0, 2]); // 2×2 map, peak at the bottom right
  const png = decodePng(Buffer.from(heatOverlayPngDataUrl(grey, 4, map, 2, 2).split(',')[1], 'base64'));
  const at = (x: number, y: number) => Array.from(png.data.subarray(4 * (y * 4 + x), 4 * (y * 4 + x) + 3));
  assert.deepEqual(at(0, 0), [70, 70, 70]);
  assert.deepEqual(at(3, 3), [255, 230, 0]);
});

test('classMapChart: the mosaic and ten class panels, drawn as SVG', async () => {
  const m = { image: new Uint8Array(36).fill(50), side: 6, maps: new Float32Array(2 * 2 * 10).fill(1), mapSide: 2, classes: 10, labels: [], predicted: [] };
  assert.equal(mapOf(m, 3).length, 4);
  const spec = classMapChart(m, FASHION_MNIST_CLASSES, 4);
  const values = (spec.data as { values: { title: string }[] }).values;
  assert.deepEqual(values.map((v) => v.title), ['test images', ...FASHION_MNIST_CLASSES]);
  const svg = await vegaLiteToSvg(spec);
  assert.equal((svg.match(/<image /g) ?? []).length, 11);
});

test('classMapChart fits a notebook column (≤ 900 px) for every mosaic size, its panels as large as that allows', async () => {
  for (const side of [268, 384, 896]) { // 4×4 mosaics of 67, 96 and 224 px images
    const m = { image: new Uint8Array(side * side).fill(90), side, maps: new Float32Array(7 * 7 * 10).fill(1), mapSide: 7, classes: 10, labels: [], predicted: [] };
    const spec = classMapChart(m, FASHION_MNIST_CLASSES) as { columns: number; spacing: number; padding: number; spec: { width: number } };
    const total = spec.columns * spec.spec.width + (spec.columns - 1) * spec.spacing + 2 * spec.padding;
    assert.ok(total <= CLASS_MAP_CHART_WIDTH && CLASS_MAP_CHART_WIDTH <= 900, `${side}-px mosaic: the spec is ${total} px wide`);
    assert.ok(spec.spec.width >= 200, `${side}-px mosaic: panels of ${spec.spec.width} px (each of 16 tiles >= 50 px)`);
    const svg = await vegaLiteToSvg(spec);
    const width = Number(/^<svg[^>]* width="(\d+)"/.exec(svg)?.[1]);
    assert.ok(width <= 900, `${side}-px mosaic: drawn ${width} px wide`);
    assert.equal((svg.match(/<image /g) ?? []).length, 11);
  }
});

test('shrinkGrey averages each output pixel over the area it covers', () => {
  assert.deepEqual(Array.from(shrinkGrey(Uint8Array.from([0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255]), 4, 2)), [128, 128, 128, 128]);
  assert.deepEqual(Array.from(shrinkGrey(Uint8Array.from([9, 9, 9, 30, 30, 30, 60, 60, 60]), 3, 3)), [9, 9, 9, 30, 30, 30, 60, 60, 60]);
  assert.deepEqual(Array.from(shrinkGrey(Uint8Array.from([0, 90, 180, 0, 90, 180, 0, 90, 180]), 3, 2)), [30, 150, 30, 150]);
});
