/**
 * Both notebooks executed headless in the tiny profile (scripts/run_notebooks.py, as
 * `npm run notebooks` does; executed once per test run and shared, see ./executed.ts), and
 * what a reader would see in them.
 *
 * Needs Debian's jupyter-nbconvert and python3-nbclient, and the Fashion-MNIST files. Skipped
 * when they are missing, unless NIN_REQUIRE_NOTEBOOKS=1 (or NIN_REQUIRE_DATA=1 for the data
 * set), which makes their absence a failure.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../lib/storage/paths';
import { PLOTLY_MIME, VEGA_LITE_MIME } from '../../lib/frontends/notebook';
import { PYTHON as python, skipUnless } from '../optional';
import { executedNotebooks, ExecutedNotebooks } from './executed';

const skip = skipUnless(['nbclient', 'data'], 'NIN_REQUIRE_NOTEBOOKS', 'the notebooks test');

interface Output { output_type: string; name?: string; text?: string | string[]; data?: Record<string, unknown> }
interface Cell { cell_type: string; source: string | string[]; outputs?: Output[] }
const joined = (t: string | string[] | undefined) => (Array.isArray(t) ? t.join('') : t ?? '');

describe('the notebooks, executed in the tiny profile', { skip }, () => {
  let out = '';
  let run: ExecutedNotebooks;
  const cells: Record<string, Cell[]> = {};
  const stdoutOf = (name: string) => cells[name].flatMap((c) => c.outputs ?? [])
    .filter((o) => o.output_type === 'stream' && o.name === 'stdout').map((o) => joined(o.text)).join('');
  const displays = (name: string) => cells[name].flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === 'display_data');

  before(() => {
    run = executedNotebooks();
    out = run.dir;
    for (const name of ['nin', 'exercises']) {
      const file = path.join(out, `${name}.ipynb`);
      if (fs.existsSync(file)) cells[name] = JSON.parse(fs.readFileSync(file, 'utf8')).cells;
    }
  });

  test('both run without an error cell and leave executed .ipynb and .html', () => {
    assert.equal(run.status, 0, `run_notebooks.py failed:\n${run.output}`);
    for (const f of ['nin.ipynb', 'nin.html', 'exercises.ipynb', 'exercises.html']) {
      assert.ok(fs.existsSync(path.join(out, f)), f);
    }
    for (const name of ['nin', 'exercises']) {
      const stderr = cells[name].flatMap((c) => c.outputs ?? []).filter((o) => o.name === 'stderr').map((o) => joined(o.text));
      assert.deepEqual(stderr, [], `${name} wrote to stderr`);
      assert.ok(cells[name].filter((c) => c.cell_type === 'code').every((c) => (c.outputs ?? []).every((o) => o.output_type !== 'error')));
    }
  });

  test('the chapter notebook prints the shape table, the profile and the summary', () => {
    const text = stdoutOf('nin');
    for (const shape of ['(1, 96, 54, 54)', '(1, 96, 26, 26)', '(1, 256, 26, 26)', '(1, 256, 12, 12)', '(1, 384, 12, 12)',
      '(1, 384, 5, 5)', '(1, 10, 5, 5)', '(1, 10, 1, 1)', '(1, 10) ']) {
      assert.ok(text.includes(shape), shape);
    }
    assert.match(text, /total\s+1,992,166/);
    assert.match(text, /tiny profile: 2 epochs at 67 px/);
    assert.match(text, /why: NIN_PROFILE=tiny was set/);
    assert.match(text, /^measured here: [\d,]+ training and [\d,]+ inference images\/s, so 2 epochs of 256 training images \(and 128 test images after each\) take about \d+ seconds on this machine$/m);
    assert.match(stdoutOf('exercises'), /^each run: measured here: .* take about .*; all 15: about \d+ minutes$/m);
    assert.match(text, /^loss [\d.]+, train acc [\d.]+, test acc [\d.]+$/m);
    assert.match(text, /^[\d.]+ examples\/sec on wasm$/m);
  });

  test('every chart carries its interactive form and a static SVG', () => {
    for (const name of ['nin', 'exercises']) {
      for (const d of displays(name)) {
        const data = d.data ?? {};
        if (VEGA_LITE_MIME in data || PLOTLY_MIME in data) {
          assert.match(joined(data['image/svg+xml'] as string[]), /^<svg/, `${name}: a chart without its SVG`);
          assert.ok(joined(data['text/plain'] as string | string[]).length > 0, `${name}: a chart without text`);
        }
      }
    }
    const vegaLite = displays('nin').filter((d) => VEGA_LITE_MIME in (d.data ?? {}));
    assert.ok(vegaLite.length >= 3, 'layer chart, training images, predictions');
  });

  test('the training plots, one plotly and one vega-lite, are each redrawn in place up to the last step', () => {
    const training = cells.nin.find((c) => (c.outputs ?? []).some((o) => PLOTLY_MIME in (o.data ?? {})));
    assert.ok(training, 'a cell showing the training curves');
    const plots = (training!.outputs ?? []).filter((o) => PLOTLY_MIME in (o.data ?? {}));
    assert.equal(plots.length, 1, 'updates replace the display instead of adding plots');
    const stepPlots = (training!.outputs ?? []).filter((o) => VEGA_LITE_MIME in (o.data ?? {}) && !(PLOTLY_MIME in (o.data ?? {})));
    assert.equal(stepPlots.length, 1, 'one vega-lite display, updated in place');
    assert.equal(joined(stepPlots[0].data!['text/plain'] as string[]), '16 steps', 'tiny: 2 epochs × 8 batches of 32');
    assert.match(joined(plots[0].data!['text/plain'] as string[]), /^epoch 2\.00\/2: train loss [\d.]+, train acc [\d.]+, test acc [\d.]+$/);
    const figure = plots[0].data![PLOTLY_MIME] as { data: Array<{ name: string; x: number[] }> };
    assert.deepEqual(figure.data.map((t) => t.name), ['train loss', 'train acc', 'test acc']);
    assert.deepEqual(figure.data[2].x, [1, 2]);
  });

  test("the chapter notebook draws the first layer's 96 filters before and after training, and they differ", () => {
    const mosaics = displays('nin').filter((d) => /^96 first-layer filters of 11×11, (before|after) training$/.test(joined(d.data?.['text/plain'] as string[])));
    assert.equal(mosaics.length, 2);
    const pngs = mosaics.map((d) => /href="(data:image\/png;base64,[^"]+)"/.exec(joined(d.data!['image/svg+xml'] as string[]))?.[1]);
    assert.ok(pngs.every((p) => p !== undefined), 'each drawn as an image');
    assert.notEqual(pngs[0], pngs[1], 'training changed them');
  });

  test('the chapter notebook lays each class map over a 4×4 mosaic of test images: eleven panels, drawn', () => {
    assert.match(stdoutOf('nin'), /^a 384-px mosaic gives 12×12 maps; tiles, true → predicted \(each image on its own\):\n(  (\S[\w/ -]* → \S[\w/ -]*\s*){4}\n){4}/m);
    const maps = displays('nin').find((d) => joined(d.data?.['text/plain'] as string[]).startsWith('class maps of a 384-px mosaic'));
    assert.ok(maps, 'a class-map display');
    const images = joined(maps!.data!['image/svg+xml'] as string[]).match(/<image [^>]*href="data:image\/png;base64,/g) ?? [];
    assert.equal(images.length, 11, 'the mosaic and one panel per class');
  });

  test('the chapter notebook shows the confusion matrix as a drawn heat map and names the most confused pairs', () => {
    const matrix = displays('nin').find((d) => joined(d.data?.['text/plain'] as string[]).startsWith('confusion matrix of 128 test images'));
    assert.ok(matrix, 'a confusion-matrix display');
    assert.match(joined(matrix!.data!['image/svg+xml'] as string[]), /layer_0_marks"[^>]*>(<path[^>]*\/>){100}/, 'ten by ten cells drawn');
    assert.match(stdoutOf('nin'), /most confused:\n {2}\S.* taken for .* \d+ times? \(\d+% of /);
  });

  test("the chapter notebook ends by pointing the web page at its own run's folder", () => {
    assert.match(stdoutOf('nin'), /^npx nin web --model \S*chapter-tiny$/m);
  });

  test('the exercises gather every run into one table and one chart', () => {
    const text = stdoutOf('exercises');
    // Each run reports its result, or that it died or diverged (which one may depend on how the machine rounds).
    const runs = ['adam lr 0.0005', 'adam lr 0.001', 'adam lr 0.002', 'sgd lr 0.1', 'sgd lr 0.02 + momentum 0.9', '0× 1×1 conv',
      '1× 1×1 conv', '2× 1×1 conv', '3× 1×1 conv', '3×3 instead of 1×1', 'dense head', "glorot init, class-block bias 0 (d2l's start)",
      "glorot init, PyTorch's default biases (d2l's PyTorch start)", 'he init, class-block bias 0', 'he init, class-block bias 0, 100 warm-up steps', 'he init, class block started alive (the cpu recipe)'];
    const finished = runs.filter((run) => {
      const line = new RegExp(`^${run.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (loss [\\d.]+, train acc|died|diverged)`, 'm').exec(text);
      assert.ok(line, `${run}: no line`);
      return line[1].startsWith('loss');
    });
    assert.ok(finished.length >= runs.length - 4, `most runs finish: ${finished.join(', ')}`);
    const tables = displays('exercises').filter((d) => 'text/html' in (d.data ?? {}));
    const results = tables.find((d) => joined(d.data!['text/plain'] as string[]).startsWith('tiny profile'))!;
    assert.equal(joined(results.data!['text/plain'] as string[]).split('\n').length, 2 + finished.length, 'caption, header, a row per finished run');
    const resources = tables.find((d) => joined(d.data!['text/plain'] as string[]).startsWith('resources'))!;
    assert.match(joined(resources.data!['text/plain'] as string[]), /NiN \(chapter\)\s+1992166\s/);
    const chart = displays('exercises').find((d) => VEGA_LITE_MIME in (d.data ?? {}))!;
    const values = (chart.data![VEGA_LITE_MIME] as { data: { values: unknown[] } }).data.values;
    assert.equal(values.length, finished.length * 2, 'finished runs × (train acc, test acc)');
  });

  test('the HTML renderings show the charts as SVG, with nothing to fetch for them', () => {
    const html = fs.readFileSync(path.join(out, 'nin.html'), 'utf8');
    // As <img> data URLs: nbconvert 6.5 would strip inline SVG down to its text.
    const images = html.match(/<img src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/g) ?? [];
    assert.ok(images.length >= 4, `vega-drawn SVGs in the page: ${images.length}`);
    const first = Buffer.from(images[0]!.replace(/^<img src="data:image\/svg\+xml;base64,/, '').replace(/"$/, ''), 'base64').toString();
    assert.match(first, /^<svg[^>]*class="marks"/);
    assert.match(first, /<path/, 'the drawing itself, not only its text');
    assert.doesNotMatch(html, /(src|href)="https?:\/\//, 'nothing loaded from the network');
  });

  // The one deliberate second execution of the chapter notebook: what it checks is a fresh
  // kernel on the first execution's checkpoints (a restart), which no shared output can show.
  // It loads the finished run instead of training, so it takes seconds, not minutes.
  test('after a kernel restart the chapter notebook goes on from its checkpoint: a finished run is loaded, not trained again', () => {
    assert.ok(fs.existsSync(path.join(run.runs, 'chapter-tiny', 'latest.json')), 'the run saved its checkpoints');
    const again = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-notebooks-again-'));
    const rerun = spawnSync(python, [path.join(packageRoot(), 'scripts', 'run_notebooks.py'), '--out', again, '--timeout', '600',
      path.join(packageRoot(), 'notebooks', 'nin.ipynb')], { encoding: 'utf8', env: run.env, timeout: 15 * 60 * 1000 });
    assert.equal(rerun.status, 0, `${rerun.stdout}\n${rerun.stderr}`);
    const rerunCells: Cell[] = JSON.parse(fs.readFileSync(path.join(again, 'nin.ipynb'), 'utf8')).cells;
    const text = rerunCells.flatMap((c) => c.outputs ?? []).filter((o) => o.name === 'stdout').map((o) => joined(o.text)).join('');
    const summary = (t: string) => /^loss [\d.]+, train acc [\d.]+, test acc [\d.]+$/m.exec(t)?.[0];
    assert.equal(summary(text), summary(stdoutOf('nin')), 'the same final numbers, from the checkpoint');
    const steps = rerunCells.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === 'display_data' &&
      /^\d+ steps$/.test(joined(o.data?.['text/plain'] as string[])));
    assert.deepEqual(steps.map((o) => joined(o.data!['text/plain'] as string[])), ['0 steps'], 'no step was trained again');
  });
});
