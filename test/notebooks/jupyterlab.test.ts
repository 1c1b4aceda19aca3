/**
 * What a JupyterLab user sees. Both notebooks are executed in the tiny profile with their
 * kernel messages recorded (scripts/run_notebooks.py --iopub; the test run's shared execution,
 * ./executed.ts), then shown in headless
 * Chromium by JupyterLab 4's own output code (test/jupyterlab/src/page.js: rendermime with
 * the standard renderers, the vega5 extension, JupyterLab's OutputArea), with and without the
 * plotly renderer, trusted and untrusted. The live training plots are replayed message by
 * message through the OutputArea's iopub handler. Screenshots go to out/jupyterlab-*.png.
 *
 * Needs chromium, python3-nbclient, the page's own packages (`npm ci --prefix
 * test/jupyterlab`) and the Fashion-MNIST files; skipped without them unless
 * NIN_REQUIRE_JUPYTERLAB=1 (CI).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../lib/storage/paths';
import { PLOTLY_MIME, VEGA_LITE_MIME } from '../../lib/frontends/notebook';
import { CHROMIUM as chromium, PUPPETEER, skipUnless } from '../optional';
import { executedNotebooks } from './executed';

const root = packageRoot();
const labDir = path.join(root, 'test', 'jupyterlab');
const skip = skipUnless(['chromium', 'nbclient', 'puppeteer', 'data'], 'NIN_REQUIRE_JUPYTERLAB', 'the JupyterLab rendering test');

interface Output { output_type: string; name?: string; data?: Record<string, unknown>; text?: string | string[] }
interface Message { header: { msg_type: string }; content: { transient?: { display_id?: string } } }
/** What page.js reports for one rendered output. */
interface Shown {
  mime: string; error: boolean; jsonText: boolean; vegaInk: number; vegaMarks: number; plotlyTraces: number; plotlyPoints: number;
  imagesDrawn: number; tableRows: number; text: string;
}
interface ShownCell { title: string; outputs: Shown[]; plain: string[] }
type Page = { evaluate: (fn: (...a: any[]) => unknown, ...args: unknown[]) => Promise<any>; screenshot: (o: object) => Promise<unknown> }; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Which renderer drew an output, or why it shows no drawing. */
export function drawnBy(o: Shown): 'plotly' | 'vega' | 'svg' | `not drawn: ${string}` {
  if (o.error) return `not drawn: an error (${o.text})`;
  if (o.jsonText) return 'not drawn: JSON shown as text';
  if (o.plotlyTraces > 0) return 'plotly';
  if (o.vegaMarks > 0 || o.vegaInk > 0.002) return 'vega';
  if (o.mime === 'image/svg+xml' && o.imagesDrawn > 0) return 'svg';
  return `not drawn: ${o.mime || 'empty'} "${o.text.slice(0, 60)}"`;
}

const isChart = (o: Output) => o.output_type === 'display_data' &&
  [VEGA_LITE_MIME, PLOTLY_MIME, 'image/svg+xml'].some((m) => o.data?.[m] !== undefined);

/** The outputs as JupyterLab's OutputAreaModel holds them: consecutive stream outputs of one name merged. */
function asLabHoldsThem(outputs: Output[]): Output[] {
  return outputs.reduce<Output[]>((acc, o) => {
    const last = acc[acc.length - 1];
    if (o.output_type === 'stream' && last?.output_type === 'stream' && last.name === o.name) {
      return [...acc.slice(0, -1), { ...last, text: plainOf(last) + plainOf(o) }];
    }
    return [...acc, o];
  }, []);
}

/** The renderer a chart bundle must be drawn by: plotly when its renderer is there, else vega. */
function expectedRenderer(o: Output, plotly: boolean): string {
  if (o.data?.[PLOTLY_MIME] !== undefined && plotly) return 'plotly';
  if (o.data?.[VEGA_LITE_MIME] !== undefined || o.data?.[PLOTLY_MIME] !== undefined) return 'vega';
  return 'svg';
}

describe('JupyterLab 4 renders the executed notebooks', { skip }, () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-jupyterlab-'));
  const shots = path.join(root, 'out');
  const notebooks: Record<string, { outputs: Output[][]; messages: Message[][] }> = {};
  let browser: { newPage: () => Promise<Page>; close: () => Promise<void> } | undefined;
  let pageUrl = '';

  before(async () => {
    const run = executedNotebooks();
    assert.equal(run.status, 0, run.output);
    for (const name of ['nin', 'exercises']) {
      const cells = JSON.parse(fs.readFileSync(path.join(run.dir, `${name}.ipynb`), 'utf8')).cells as { outputs?: Output[] }[];
      notebooks[name] = {
        outputs: cells.map((c) => c.outputs ?? []),
        messages: JSON.parse(fs.readFileSync(path.join(run.dir, `${name}.iopub.json`), 'utf8')),
      };
    }
    pageUrl = await bundlePage(work);
    const puppeteer = require(PUPPETEER);
    browser = await puppeteer.launch({
      executablePath: chromium, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files', '--no-first-run'],
    });
    fs.mkdirSync(shots, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** A fresh page with the bundle loaded; errors the page itself throws fail the test. */
  async function openPage(): Promise<Page & { errors: string[] }> {
    const page = await browser!.newPage() as Page & { errors: string[]; on: Function; goto: Function; setViewport: Function };
    page.errors = [];
    page.on('pageerror', (e: Error) => page.errors.push(e.message));
    await page.setViewport({ width: 1000, height: 800 });
    await page.goto(pageUrl);
    return page;
  }

  async function show(name: string, plotly: boolean, trusted: boolean): Promise<ShownCell[]> {
    const page = await openPage();
    await page.evaluate((cells, opts) => (window as any).lab.showCells(cells, opts), notebooks[name].outputs, { plotly, trusted });
    await page.evaluate(() => (window as any).lab.settle());
    const shown: ShownCell[] = await page.evaluate(() => (window as any).lab.inspect());
    const file = `jupyterlab-${name}-${plotly ? 'plotly' : 'no-plotly'}-${trusted ? 'trusted' : 'untrusted'}.png`;
    await page.screenshot({ path: path.join(shots, file), fullPage: true });
    assert.deepEqual(page.errors, [], 'errors thrown in the page');
    return shown;
  }

  for (const name of ['nin', 'exercises']) {
    for (const plotly of [true, false]) {
      for (const trusted of [true, false]) {
        const setUp = `${plotly ? 'with' : 'without'} the plotly renderer, ${trusted ? 'trusted' : 'untrusted'}`;
        test(`${name}.ipynb ${setUp}: every chart is drawn, no output is JSON, empty or an error`, async () => {
          const shown = await show(name, plotly, trusted);
          let charts = 0;
          notebooks[name].outputs.forEach((outputs, i) => {
            const expected = asLabHoldsThem(outputs);
            assert.equal(shown[i].outputs.length, expected.length, `cell ${i}: outputs shown`);
            expected.forEach((o, j) => {
              const got = shown[i].outputs[j];
              assert.ok(!got.error && !got.jsonText, `cell ${i} output ${j}: ${drawnBy(got)}`);
              if (o.data?.['text/html'] !== undefined) assert.ok(got.tableRows > 1, `cell ${i} output ${j}: a table`);
              if (!isChart(o)) return;
              charts += 1;
              assert.equal(drawnBy(got), expectedRenderer(o, plotly), `cell ${i} output ${j}`);
            });
          });
          assert.ok(charts >= (name === 'nin' ? 8 : 1), `charts checked: ${charts}`);
        });
      }
    }
  }

  test('a chart JupyterLab cannot draw is reported as not drawn (the check can fail)', async () => {
    const page = await openPage();
    const figure = { data: [{ type: 'scatter', x: [1, 2], y: [3, 4] }], layout: {} };
    const cells = [
      [{ output_type: 'display_data', data: { [PLOTLY_MIME]: figure, 'text/plain': '2 points' }, metadata: {} }],
      [{ output_type: 'display_data', data: { [VEGA_LITE_MIME]: { mark: 'nonsense' }, 'text/plain': 'bad spec' }, metadata: {} }],
      [{ output_type: 'display_data', data: { 'image/svg+xml': '<svg xmlns="http://www.w3.org/2000/svg"/>', 'text/plain': 'svg' }, metadata: {} }],
    ];
    await page.evaluate((c, opts) => (window as any).lab.showCells(c, opts), cells, { plotly: false, trusted: false });
    await page.evaluate(() => (window as any).lab.settle(5000));
    const shown: ShownCell[] = await page.evaluate(() => (window as any).lab.inspect());
    assert.match(drawnBy(shown[0].outputs[0]), /^not drawn: text\/plain "2 points"/, 'plotly-only bundle, no plotly renderer');
    assert.match(drawnBy(shown[1].outputs[0]), /^not drawn: an error/, 'an invalid vega-lite spec');
    assert.match(drawnBy(shown[2].outputs[0]), /^not drawn: text\/plain/, 'SVG in an untrusted notebook');
  });

  for (const plotly of [true, false]) {
    test(`live plots replayed ${plotly ? 'with' : 'without'} the plotly renderer end as one current chart per display`, async () => {
      const page = await openPage();
      const { messages, outputs } = notebooks.nin;
      const updates = messages.flat().filter((m) => m.header.msg_type === 'update_display_data').length;
      assert.ok(updates >= 4, `update_display_data messages sent while training: ${updates}`);
      await page.evaluate((m, opts) => (window as any).lab.replay(m, opts), messages, { plotly });
      await page.evaluate(() => (window as any).lab.settle());
      const shown: ShownCell[] = await page.evaluate(() => (window as any).lab.inspect());
      messages.forEach((cellMessages, i) => {
        // nbclient applied the same messages to the saved notebook: one output per display,
        // holding the display's last update (its text/plain names the epoch it reached).
        const expected = asLabHoldsThem(outputs[i]);
        const shownDisplays = shown[i].plain.length - expected.filter((o) => o.output_type === 'stream').length;
        assert.equal(shownDisplays, cellMessages.filter((m) => m.header.msg_type === 'display_data').length, `cell ${i}: one output per display`);
        assert.deepEqual(shown[i].plain, expected.map((o) => plainOf(o)), `cell ${i}: each display holds its last update`);
        assert.equal(shown[i].outputs.length, expected.length, `cell ${i}: outputs drawn`);
        expected.forEach((o, j) => {
          if (isChart(o)) assert.equal(drawnBy(shown[i].outputs[j]), expectedRenderer(o, plotly), `cell ${i} output ${j}`);
          // The drawing, not only the model, must be the last update: every point of the final figure drawn.
          const figure = o.data?.[PLOTLY_MIME] as { data: { x: unknown[] }[] } | undefined;
          if (figure && plotly) {
            const points = figure.data.reduce((n, t) => n + t.x.length, 0);
            assert.equal(shown[i].outputs[j].plotlyPoints, points, `cell ${i} output ${j}: points drawn by plotly`);
          }
        });
      });
      const trainingCell = outputs.findIndex((cell) => cell.some((o) => o.data?.[PLOTLY_MIME] !== undefined));
      const sections = await (page as any).$$('section.nin-cell');
      await sections[trainingCell].screenshot({ path: path.join(shots, `jupyterlab-nin-training-${plotly ? 'plotly' : 'no-plotly'}.png`) });
    });
  }
});

const plainOf = (o: Output): string => {
  const t = o.output_type === 'stream' ? o.text : (o.data?.['text/plain'] as string | string[] | undefined);
  return Array.isArray(t) ? t.join('') : t ?? '';
};

/** JupyterLab's style sheets import packages as webpack does, `~@scope/pkg/...`: the same path without the `~`. */
const webpackTildeImports = {
  name: 'webpack-tilde-imports',
  setup(build: any) { // eslint-disable-line @typescript-eslint/no-explicit-any
    build.onResolve({ filter: /^~/ }, (args: { path: string; resolveDir: string; kind: string }) =>
      build.resolve(args.path.slice(1), { resolveDir: args.resolveDir, kind: args.kind }));
  },
};

/** Bundles page.js (esbuild, from test/jupyterlab's own packages) and writes the page that loads it. */
async function bundlePage(work: string): Promise<string> {
  const esbuild = require(path.join(labDir, 'node_modules', 'esbuild'));
  await esbuild.build({
    entryPoints: [path.join(labDir, 'src', 'page.js')], bundle: true, format: 'iife', outfile: path.join(work, 'page.js'),
    loader: { '.svg': 'dataurl', '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl', '.png': 'dataurl', '.gif': 'dataurl' },
    // The plotly renderer was built against lumino 1; in JupyterLab 4 it shares the host's
    // @lumino/widgets, as it does here.
    alias: { '@lumino/widgets': path.join(labDir, 'node_modules', '@lumino', 'widgets') },
    define: { 'process.env.NODE_ENV': '"production"', global: 'window' }, logLevel: 'error',
    plugins: [webpackTildeImports],
  });
  const html = path.join(work, 'page.html');
  fs.writeFileSync(html, '<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="page.css">' +
    '<style>body{font-family:sans-serif;margin:16px;background:#fff} section.nin-cell h3{font-size:12px;color:#888;margin:8px 0 2px}</style>' +
    '</head><body data-jp-theme-light="true"><script src="page.js"></script></body></html>');
  return `file://${html}`;
}
