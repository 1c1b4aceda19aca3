/** lib/frontends/notebook.ts: bundles and displays (outside a kernel here: they print their text). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { display, inNotebook, newLiveDisplay, plotlyBundle, PLOTLY_MIME, tableBundle, vegaLiteBundle, VEGA_LITE_MIME } from '../../lib/frontends/notebook';
import { TrainingCurves } from '../../lib/core/plots';

function captureLog<T>(fn: () => T): { result: T; lines: string[] } {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => { lines.push(args.join(' ')); };
  try {
    return { result: fn(), lines };
  } finally {
    console.log = original;
  }
}

test('chart bundles carry the interactive form, an SVG and text', async () => {
  const curves = new TrainingCurves(1);
  curves.batchEnd({ epoch: 1, batch: 0, numBatches: 1, loss: 2, acc: 0.1 });
  const vl = await vegaLiteBundle(curves.toVegaLite(), 'text');
  assert.deepEqual(Object.keys(vl).sort(), ['image/svg+xml', 'text/plain', VEGA_LITE_MIME].sort());
  assert.match(vl['image/svg+xml'] as string, /^<svg/);
  const pl = await plotlyBundle(curves.toPlotly(), curves.toVegaLite(), 'text');
  assert.deepEqual(Object.keys(pl).sort(), ['image/svg+xml', 'text/plain', PLOTLY_MIME, VEGA_LITE_MIME].sort());
  assert.ok(!('text/html' in vl) && !('text/html' in pl), 'no html: nbconvert would prefer it to the svg');
});

test('tableBundle: an escaped HTML table and aligned text', () => {
  const b = tableBundle([{ run: '<a>', acc: 0.12345, n: 3 }, { run: 'b', acc: 1, n: 10 }], 'cap');
  assert.match(b['text/html'] as string, /<caption>cap<\/caption>/);
  assert.match(b['text/html'] as string, /<td>&lt;a&gt;<\/td><td>0\.123<\/td><td>3<\/td>/);
  assert.equal(b['text/plain'], 'cap\nrun  acc    n\n<a>  0.123  3\nb    1      10');
});

test('outside a tslab kernel, displays print their text/plain line', () => {
  assert.equal(inNotebook(), false);
  const live = newLiveDisplay();
  const { lines } = captureLog(() => {
    live.update({ 'text/plain': 'first' });
    live.update({ 'text/plain': 'second', 'image/svg+xml': '<svg/>' });
    display({ 'image/png': 'xx' });
  });
  assert.deepEqual(lines, ['first', 'second']);
});

test('inside a kernel, a live display sends one display_data, then updates with the same id', () => {
  // Stand in for the tslab module a kernel loads, as lib/notebook finds it in require.cache.
  const sent: Array<{ data: unknown; transient: { display_id: string }; update: boolean }> = [];
  const fakeId = '/fake/node_modules/tslab/dist/jupyter.js';
  require.cache[fakeId] = {
    id: fakeId, exports: { lastWriteDisplayData: (m: never, update: boolean) => sent.push({ ...(m as object), update } as never) },
  } as unknown as NodeJS.Module;
  try {
    assert.equal(inNotebook(), true);
    const live = newLiveDisplay();
    live.update({ 'text/plain': 'a' });
    live.update({ 'text/plain': 'b' });
    display({ 'text/plain': 'c' });
    assert.deepEqual(sent.map((s) => s.update), [false, true, false]);
    assert.equal(sent[0].transient.display_id, sent[1].transient.display_id);
    assert.notEqual(sent[0].transient.display_id, sent[2].transient.display_id);
    assert.deepEqual(sent[1].data, { 'text/plain': 'b' });

    // A plotly chart's update first shows its text alone, so that JupyterLab draws the new
    // figure with a fresh renderer (test/jupyterlab.test.ts shows why).
    sent.length = 0;
    const chart = newLiveDisplay();
    chart.update({ [PLOTLY_MIME]: { data: [] }, 'text/plain': 'epoch 1' });
    chart.update({ [PLOTLY_MIME]: { data: [1] }, 'text/plain': 'epoch 2' });
    assert.deepEqual(sent.map((s) => [s.update, Object.keys(s.data as object).sort()]), [
      [false, ['text/plain', PLOTLY_MIME].sort()], [true, ['text/plain']], [true, ['text/plain', PLOTLY_MIME].sort()],
    ]);
    assert.deepEqual(sent[1].data, { 'text/plain': 'epoch 2' });
  } finally {
    delete require.cache[fakeId];
  }
});
