/** lib/core/plots.ts: training curves, charts as vega-lite and plotly, SVG drawn by vega in Node. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { comparisonChart, confusionChart, filterMosaic, greyPngDataUrl, mosaicChart, imagesChart, layerParamsChart, TrainingCurves, vegaLiteToSvg } from '../../lib/core/plots';
import type { LayerRow } from '../../lib/core/model';

function feed(curves: TrainingCurves, epochs: number, numBatches: number): number {
  let redraws = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    for (let batch = 0; batch < numBatches; batch++) {
      if (curves.batchEnd({ epoch, batch, numBatches, loss: 2 - epoch / 10 - batch / 100, acc: 0.1 * epoch })) redraws++;
    }
    curves.epochEnd({ epoch, trainLoss: 1, trainAcc: 0.5, testAcc: 0.4 + epoch / 10, examplesPerSec: 1, seconds: 1 });
  }
  return redraws;
}

test('TrainingCurves adds d2l-style points: a few per epoch for training, one per epoch for test', () => {
  const curves = new TrainingCurves(2, 5);
  const redraws = feed(curves, 2, 20);
  assert.equal(redraws, 10, 'a redraw every 4 batches of 20');
  const xs = (s: string) => curves.points.filter((p) => p.series === s).map((p) => p.x);
  assert.deepEqual(xs('train loss').map((x) => x.toFixed(6)), ['0.2', '0.4', '0.6', '0.8', '1', '1.2', '1.4', '1.6', '1.8', '2']
    .map((x) => Number(x).toFixed(6)));
  assert.deepEqual(xs('test acc'), [1, 2]);
  // The running mean restarts each epoch: the first point of epoch 2 averages batches 0..3 of epoch 2.
  const firstOfEpoch2 = curves.points.find((p) => p.series === 'train loss' && p.x > 1)!;
  assert.ok(Math.abs(firstOfEpoch2.value - (2 - 0.2 - 0.015)) < 1e-9, String(firstOfEpoch2.value));
  assert.match(curves.summary(), /^epoch 2\.00\/2: train loss [\d.]+, train acc 0\.200, test acc 0\.600$/);
  assert.equal(curves.steps.length, 40, 'every step of both epochs');
  assert.equal(curves.steps[39].x, 2);
});

test('the step-loss chart layers every step under the running mean, and renders', async () => {
  const curves = new TrainingCurves(1);
  feed(curves, 1, 10);
  const spec = curves.stepLossVegaLite();
  const layers = spec.layer as Array<{ data: { values: unknown[] } }>;
  assert.equal(layers[0].data.values.length, 10);
  assert.equal(layers[1].data.values.length, 5);
  assert.match(await vegaLiteToSvg(spec), /<path/);
});

test('a short epoch still gets its last point', () => {
  const curves = new TrainingCurves(1, 5);
  assert.equal(feed(curves, 1, 3), 3);
  assert.equal(curves.points.filter((p) => p.series === 'train acc').at(-1)!.x, 1);
});

test('the same curves as plotly traces and as a vega-lite spec', async () => {
  const curves = new TrainingCurves(2);
  feed(curves, 2, 10);
  const fig = curves.toPlotly('t');
  assert.deepEqual(fig.data.map((d) => d.name), ['train loss', 'train acc', 'test acc']);
  assert.deepEqual(fig.data[2].y, [0.4 + 1 / 10, 0.4 + 2 / 10], 'test acc after each epoch');
  const spec = curves.toVegaLite('t');
  assert.equal((spec.data as { values: unknown[] }).values.length, curves.points.length);
  const svg = await vegaLiteToSvg(spec);
  assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /train loss/);
  assert.match(svg, /<path/);
});

test('layer, comparison and image charts render to SVG', async () => {
  const rows: LayerRow[] = [
    { name: 'block1', shapeNHWC: [1, 54, 54, 96], shapeNCHW: [1, 96, 54, 54], params: 30336 },
    { name: 'pool1', shapeNHWC: [1, 26, 26, 96], shapeNCHW: [1, 96, 26, 26], params: 0 },
  ];
  assert.match(await vegaLiteToSvg(layerParamsChart(rows)), /\(1, 96, 54, 54\)/);
  const runs = [{ run: 'a', 'test acc': 0.5 }, { run: 'b', 'test acc': 0.7 }];
  const cmp = comparisonChart(runs, ['test acc']);
  assert.deepEqual((cmp.data as { values: unknown[] }).values, [
    { run: 'a', metric: 'test acc', value: 0.5 }, { run: 'b', metric: 'test acc', value: 0.7 }]);
  assert.match(await vegaLiteToSvg(cmp), /<svg/);
  const pixels = new Uint8Array(2 * 4 * 3).map((_, i) => i * 10);
  const svg = await vegaLiteToSvg(imagesChart(pixels, 4, 3, ['coat → shirt', 'bag → bag']));
  assert.equal((svg.match(/<image/g) ?? []).length, 2);
  assert.match(svg, /coat → shirt/);
});

test('greyPngDataUrl encodes a valid greyscale PNG', () => {
  const url = greyPngDataUrl(Uint8Array.from([0, 128, 255, 64]), 2, 2);
  const bytes = Buffer.from(url.replace(/^data:image\/png;base64,/, ''), 'base64');
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(bytes.readUInt32BE(16), 2, 'width');
  assert.equal(bytes.readUInt32BE(20), 2, 'height');
  assert.equal(bytes[25], 0, 'colour type 0: greyscale');
});

test('confusionChart: one cell per (true, predicted) pair, coloured by the share of its row, drawn by vega', async () => {
  const names = ['a', 'b', 'c'];
  const spec = confusionChart([[8, 2, 0], [1, 9, 0], [0, 5, 5]], names);
  const values = (spec.data as { values: Array<{ true: string; predicted: string; count: number; share: number }> }).values;
  assert.equal(values.length, 9);
  assert.deepEqual(values.find((v) => v.true === 'c' && v.predicted === 'b'), { true: 'c', predicted: 'b', count: 5, share: 0.5 });
  const svg = await vegaLiteToSvg(spec);
  assert.match(svg, /class="mark-rect role-mark layer_0_marks"[^>]*>(<path[^>]*\/>){9}/, "nine cells drawn");
  assert.match(svg, />9</, 'the counts are written in the cells');
});

test('filterMosaic: 96 filters of 11×11 in 16 columns, each scaled to its own range; mosaicChart draws it as one image', async () => {
  const k = 11;
  const filters = 96;
  const kernel = new Float32Array(k * k * filters);
  for (let i = 0; i < k * k; i++) for (let f = 0; f < filters; f++) kernel[i * filters + f] = f === 0 ? i : -i * (f + 1); // filter 0 rises, the others fall
  const m = filterMosaic(kernel, k, filters);
  assert.deepEqual([m.height, m.width], [6 * 12 - 1, 16 * 12 - 1]);
  assert.equal(m.pixels[0], 0, 'filter 0: its smallest value is black');
  assert.equal(m.pixels[10 * m.width + 10], 255, 'and its largest white');
  assert.equal(m.pixels[12], 255, 'filter 1 falls: its first value is its largest');
  assert.equal(m.pixels[11], 255, 'the gap between filters is white');
  const svg = await vegaLiteToSvg(mosaicChart(m, 'first-layer filters'));
  assert.match(svg, /<image[^>]*href="data:image\/png;base64,/);
});
