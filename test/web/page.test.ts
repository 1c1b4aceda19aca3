/**
 * The web page (`nin web`) in headless Chromium: built from web/ into a folder of its own,
 * served by the library's server, driven with puppeteer-core (test/jupyterlab's). Its logits
 * must equal the library's in Node on the same (shipped, quantised) weights, each class map's
 * mean its score; a drawing and an upload must become the tensor the library makes; nothing
 * may be requested from another origin; no console error; no tensor leaked over 100
 * predictions; training in the page lowers the loss and stops when asked; every control is
 * reachable with Tab and labelled; the view survives a reload from its URL; a served model and
 * a dropped one are used, a wrong one refused in words. Screenshots go to out/web-*.png and the
 * page's timings to out/web-measurements.json.
 *
 * The page runs on wasm here (`?backend=wasm`): without a GPU, Chromium's WebGL is emulated
 * on the CPU and far slower; the page itself passes it over for the same reason.
 *
 * Needs chromium (Debian) and puppeteer-core (npm ci --prefix test/jupyterlab); skipped
 * without them unless NIN_REQUIRE_BROWSER=1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { encode as encodePng } from 'fast-png';
import { packageRoot } from '../../lib/storage/paths';
import { CHROMIUM as chromium, PUPPETEER, skipUnless } from '../optional';
import { selectBackend } from '../../lib/kernels/backend';
import { loadModelFromDir } from '../../lib/storage/checkpoint';
import { parseIdx } from '../../lib/core/idx';
import { decodeSplit, FashionMnistSplit, firstBatch, sliceSplit } from '../../lib/core/fashionMnist';
import { logitsOf } from '../../lib/core/model';
import { shrinkGrey } from '../../lib/core/classMaps';
import { loadServedModel, startWebServer, WebServer } from '../../lib/frontends/web';

const skip = skipUnless(['chromium', 'puppeteer'], 'NIN_REQUIRE_BROWSER', 'the web page test');

const root = packageRoot();
const shipped = path.join(root, 'web', 'assets', 'model');
const out = path.join(root, 'out');

/* eslint-disable @typescript-eslint/no-explicit-any */
type Page = any;

/** The shipped test images, as the page reads them. */
function shippedTest(): FashionMnistSplit {
  const dir = path.join(root, 'web', 'assets', 'data');
  const bytes = (f: string) => new Uint8Array(fs.readFileSync(path.join(dir, f)));
  return decodeSplit(parseIdx(bytes('test-images.idx'), 'i'), parseIdx(bytes('test-labels.idx'), 'l'), 'i', 'l').split;
}

/** |a − b| ≤ tol · max(1, the row's largest |b|), element by element. */
function assertClose(a: number[], b: number[], tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const scale = Math.max(1, ...b.map(Math.abs));
  const worst = a.reduce((w, v, i) => Math.max(w, Math.abs(v - b[i])), 0);
  assert.ok(worst <= tol * scale, `${what}: largest difference ${worst} > ${tol} × ${scale}`);
}

describe('the web page in Chromium', { skip }, () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-web-'));
  const site = path.join(work, 'site');
  let server: WebServer;
  let browser: any;
  let page: Page;
  const requests: string[] = [];
  const errors: string[] = [];
  const measurements: Record<string, unknown> = {};
  let test1000: FashionMnistSplit;

  async function open(query: string): Promise<Page> {
    const p = await browser.newPage();
    await p.setViewport({ width: 1150, height: 900 });
    p.on('request', (r: any) => requests.push(r.url()));
    p.on('console', (m: any) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    p.on('pageerror', (e: Error) => errors.push(`page: ${e.message}`));
    let bytes = 0;
    p.on('response', async (r: any) => {
      try { bytes += (await r.buffer()).length; } catch { /* a redirect or an aborted load */ }
    });
    await p.goto(`${server.url}${query}`);
    await p.evaluate(() => (window as any).ninPage.ready);
    (p as any).loadedBytes = () => bytes;
    return p;
  }

  const shot = async (p: Page, name: string, selector?: string) => {
    fs.mkdirSync(out, { recursive: true });
    const file = path.join(out, `web-${name}.png`);
    if (selector) await (await p.$(selector)).screenshot({ path: file });
    else await p.screenshot({ path: file, fullPage: true });
  };

  before(async () => {
    const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-web.js'), '--out', site, '--no-check'], { encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    await selectBackend('cpu', { native: false });
    test1000 = shippedTest();
    server = await startWebServer({ root: site, port: 0, model: await loadServedModel(shipped) });
    const puppeteer = require(PUPPETEER);
    browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--no-first-run', '--disable-dev-shm-usage'], protocolTimeout: 600_000 });
    page = await open('?backend=wasm');
  });

  after(async () => {
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'web-measurements.json'), `${JSON.stringify(measurements, null, 2)}\n`);
    await browser?.close();
    await server?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('the page starts on wasm with the shipped model and measures itself', async () => {
    assert.equal(await page.evaluate(() => (window as any).ninPage.backend()), 'wasm');
    assert.match(await page.$eval('#status', (e: Element) => e.textContent), /WebAssembly.*shipped/);
    const timing = await page.evaluate(() => (window as any).ninPage.timing());
    measurements.pageBytes = page.loadedBytes();
    measurements.firstPredictionMs = Math.round(timing.firstPrediction);
    await shot(page, 'page');
  });

  test('its logits equal the library\'s in Node on the same weights, and each class map\'s mean is its score', async () => {
    const { model } = await loadModelFromDir(shipped);
    const count = 200;
    const batch = firstBatch(sliceSplit(test1000, 0, count), count, 67)!;
    const node = tf.tidy(() => logitsOf(model, batch.xs).arraySync() as number[][]);
    tf.dispose([batch.xs, batch.ys]);
    const inPage = await page.evaluate((n: number) => (window as any).ninPage.logits(0, n), count);
    node.forEach((row, i) => assertClose(inPage[i], row, 1e-4, `test image ${i}`));
    for (const i of [0, 1, 2, 17, 42]) {
      await page.evaluate((k: number) => (window as any).ninPage.selectTest(k), i);
      const own = await page.evaluate(() => { (window as any).ninPage.setMapSize(67); return (window as any).ninPage.reading(); });
      assertClose(own.logits, node[i], 1e-4, `image ${i} shown`);
      assertClose(own.mapMeans, own.logits, 1e-5, `image ${i}: map means against scores at 67 px`);
      const framed = await page.evaluate(() => { (window as any).ninPage.setMapSize(195); return (window as any).ninPage.reading(); });
      assertClose(framed.mapMeans, framed.mapScores, 1e-5, `image ${i}: map means against scores at 195 px`);
    }
    const t0 = performance.now();
    const times = await page.evaluate(() => Array.from({ length: 5 }, () => { (window as any).ninPage.update(); return (window as any).ninPage.timing().lastUpdate; }));
    void t0;
    measurements.predictionWithAllMapsMs = Math.round(times.sort((a: number, b: number) => a - b)[2]);
    model.dispose();
  });

  test('100 predictions leave as many tensors as one', async () => {
    const counts = await page.evaluate(() => {
      const p = (window as any).ninPage;
      p.update();
      const one = p.numTensors();
      for (let i = 0; i < 100; i++) { p.selectTest(i % 7); }
      return [one, p.numTensors()];
    });
    assert.equal(counts[1], counts[0]);
  });

  test('a drawing becomes the tensor the library makes of it', async () => {
    const pad = await page.$('#pad');
    const box = await pad.boundingBox();
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.8, { steps: 8 });
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.2, { steps: 8 });
    await page.mouse.up();
    const state = await page.evaluate(() => (window as any).ninPage.state());
    assert.equal(state.input, 'draw');
    const pixels = Uint8Array.from(await page.evaluate(() => (window as any).ninPage.padPixels()));
    const grey = shrinkGrey(pixels, 280, 28);
    assert.ok(grey.some((v) => v > 100), 'the stroke is in the 28×28 image');
    const input = await page.evaluate(() => (window as any).ninPage.input());
    assert.deepEqual(input.grey, Array.from(grey));
    const lib = firstBatch({ images: grey, labels: Uint8Array.of(0), count: 1, height: 28, width: 28 }, 1, 67)!;
    assertClose(input.tensor, Array.from(lib.xs.dataSync()), 1e-5, 'the drawing\'s tensor');
    tf.dispose([lib.xs, lib.ys]);
    await shot(page, 'draw', '#input-section');
    // Keyboard: the pen moves with the arrow keys and draws between Space presses.
    await page.click('#clear-pad');
    await page.focus('#pad');
    await page.keyboard.press('Space');
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Space');
    const keyed = await page.evaluate(() => (window as any).ninPage.state());
    assert.ok(keyed.grey.filter((v: number) => v > 100).length >= 6, 'a keyboard stroke');
    // The drawing lives in the URL.
    assert.match(await page.evaluate(() => location.search), /draw=/);
  });

  test('a touch drawing becomes shrinkGrey of the pad, where the finger went', async () => {
    await page.click('#clear-pad');
    const pad = await page.$('#pad');
    const box = await pad.boundingBox();
    const at = (fx: number, fy: number) => [box.x + box.width * fx, box.y + box.height * fy];
    // A vertical stroke down the middle, as a finger draws it: pointer events of pointerType 'touch'.
    await page.evaluate(() => {
      const kinds = new Set<string>();
      for (const type of ['pointerdown', 'pointermove', 'pointerup']) {
        document.getElementById('pad')!.addEventListener(type, (e) => kinds.add((e as PointerEvent).pointerType));
      }
      (window as any).padPointerKinds = kinds;
    });
    await page.touchscreen.touchStart(...at(0.5, 0.2));
    for (let i = 1; i <= 8; i++) await page.touchscreen.touchMove(...at(0.5, 0.2 + (0.6 * i) / 8));
    await page.touchscreen.touchEnd();
    assert.deepEqual(await page.evaluate(() => [...(window as any).padPointerKinds]), ['touch'], 'the stroke came as touch');
    const state = await page.evaluate(() => (window as any).ninPage.state());
    assert.equal(state.input, 'draw');
    const pixels = Uint8Array.from(await page.evaluate(() => (window as any).ninPage.padPixels()));
    const grey = shrinkGrey(pixels, 280, 28);
    const input = await page.evaluate(() => (window as any).ninPage.input());
    assert.deepEqual(input.grey, Array.from(grey));
    // Bright down column 14 (rows 6 to 22), dark at the corners and the sides.
    for (const row of [8, 14, 20]) assert.ok(grey[row * 28 + 14] > 100, `the stroke at row ${row}, column 14: ${grey[row * 28 + 14]}`);
    for (const [row, col] of [[1, 1], [14, 3], [14, 24], [26, 26]]) assert.equal(grey[row * 28 + col], 0, `nothing at row ${row}, column ${col}`);
  });

  test('an uploaded photo becomes the tensor the library makes of it (inverted when its background is light)', async () => {
    const k = 7;
    const original = test1000.images.slice(k * 784, (k + 1) * 784);
    const small = path.join(work, 'small.png');
    fs.writeFileSync(small, encodePng({ width: 28, height: 28, data: original, channels: 1, depth: 8 }));
    const big = new Uint8Array(280 * 280 * 3);
    for (let y = 0; y < 280; y++) {
      for (let x = 0; x < 280; x++) big.fill(255 - original[Math.floor(y / 10) * 28 + Math.floor(x / 10)], 3 * (y * 280 + x), 3 * (y * 280 + x) + 3);
    }
    const light = path.join(work, 'light.png');
    fs.writeFileSync(light, encodePng({ width: 280, height: 280, data: big, channels: 3, depth: 8 }));
    for (const file of [small, light]) {
      const input = await page.$('#upload');
      await input.uploadFile(file);
      await page.waitForFunction(() => (window as any).ninPage.state().input === 'upload');
      await page.waitForFunction(() => document.getElementById('input-note')!.textContent!.includes('Your photo'));
      const got = await page.evaluate(() => (window as any).ninPage.input());
      assert.deepEqual(got.grey, Array.from(original), `${path.basename(file)}: the 28×28 image`);
      const lib = firstBatch(sliceSplit(test1000, k, 1), 1, 67)!;
      assertClose(got.tensor, Array.from(lib.xs.dataSync()), 1e-5, `${path.basename(file)}: the tensor`);
      tf.dispose([lib.xs, lib.ys]);
      await page.evaluate(() => { (window as any).ninPage.selectTest(0); });
    }
  });

  test('every control is reachable with Tab and has a name', async () => {
    const controls = await page.evaluate(() => {
      const els = Array.from(document.querySelectorAll<HTMLElement>('button, input, select, a[href], summary, [tabindex="0"]'))
        .filter((e) => !(e as HTMLButtonElement).disabled && e.offsetParent !== null);
      const nameOf = (e: HTMLElement) => {
        const by = e.getAttribute('aria-labelledby');
        return (e.getAttribute('aria-label') ?? (by ? document.getElementById(by)?.textContent : undefined) ??
          (e as HTMLInputElement).labels?.[0]?.textContent ?? e.textContent ?? e.title ?? '').trim();
      };
      els.forEach((e, i) => e.setAttribute('data-k', String(i)));
      return els.map((e) => ({ k: e.getAttribute('data-k'), tag: e.tagName, id: e.id, name: nameOf(e) }));
    });
    const unnamed = controls.filter((c: { name: string }) => c.name === '');
    assert.deepEqual(unnamed, [], 'controls without a name');
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.focus('body');
    const seen = new Set<string>();
    for (let i = 0; i < controls.length + 20; i++) {
      await page.keyboard.press('Tab');
      const k = await page.evaluate(() => document.activeElement?.getAttribute('data-k'));
      if (k) seen.add(k);
    }
    const missed = controls.filter((c: { k: string }) => !seen.has(c.k));
    assert.deepEqual(missed, [], 'controls Tab never reaches');
    measurements.controls = controls.length;
  });

  test('the view lives in the URL', async () => {
    await page.evaluate(() => (window as any).ninPage.selectTest(12));
    await page.select('#layer-select', 'pool2');
    await page.click('#maps button:nth-child(4)');
    await page.click('#confusion tbody tr:nth-child(7) td:nth-child(2) button');
    const url = await page.url();
    assert.match(url, /img=12/);
    assert.match(url, /layer=pool2/);
    assert.match(url, /cls=3/);
    assert.match(url, /cell=6-0/);
    const again = await open(new URL(url).search);
    const state = await again.evaluate(() => (window as any).ninPage.state());
    assert.deepEqual([state.index, state.layer, state.cls, state.cell], [12, 'pool2', 3, [6, 0]]);
    assert.match(await again.$eval('#cell-title', (e: Element) => e.textContent), /shirt images? predicted as t-shirt/);
    await shot(again, 'errors', '#errors-section');
    await shot(again, 'maps', '#maps-section');
    await shot(again, 'layers', '#layers-section');
    await again.close();
  });

  test('a served model is used, a dropped one is checked', async () => {
    const served = await open('?backend=wasm&model=served');
    assert.ok((await served.evaluate(() => (window as any).ninPage.modelSources())).includes('served'));
    assert.match(await served.$eval('#model-about', (e: Element) => e.textContent), /served by nin web/);
    // Not a NiN: a small dense model, saved as tfjs saves one.
    const other = path.join(work, 'other');
    fs.mkdirSync(other);
    const dense = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
    await dense.save(tf.io.withSaveHandler(async (a) => {
      fs.writeFileSync(path.join(other, 'weights.bin'), new Uint8Array(tf.io.CompositeArrayBuffer.join(a.weightData!)));
      fs.writeFileSync(path.join(other, 'model.json'), JSON.stringify({ modelTopology: a.modelTopology, format: 'layers-model',
        weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    dense.dispose();
    const files = await served.$('#model-files');
    await files.uploadFile(path.join(other, 'model.json'), path.join(other, 'weights.bin'));
    await served.waitForFunction(() => document.getElementById('model-message')!.textContent !== '');
    assert.match(await served.$eval('#model-message', (e: Element) => e.textContent), /not a NiN the page can show/);
    await files.uploadFile(path.join(shipped, 'model.json'));
    await served.waitForFunction(() => /needs weights\.bin/.test(document.getElementById('model-message')!.textContent!));
    await files.uploadFile(path.join(shipped, 'model.json'), path.join(shipped, 'weights.bin'));
    await served.waitForFunction(() => /Loaded/.test(document.getElementById('model-message')!.textContent!), { timeout: 60_000 });
    assert.equal(await served.$eval('#model-select', (e: HTMLSelectElement) => e.value), 'dropped');
    await served.close();
  });

  test('training in the page lowers the loss, stops when asked, and resumes', { timeout: 300_000 }, async () => {
    await page.select('#recipe', 'quick');
    await page.click('#train-start');
    const losses = async () => page.evaluate(() => (window as any).ninPage.trainLosses());
    await page.waitForFunction(() => (window as any).ninPage.trainLosses().length >= 40, { timeout: 240_000, polling: 500 });
    const l = await losses();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(l.slice(-6)) < mean(l.slice(0, 6)), `the loss fell: first ${l.slice(0, 6)}, last ${l.slice(-6)}`);
    await page.click('#train-stop');
    await page.waitForFunction(() => /Stopped/.test(document.getElementById('train-status')!.textContent!), { timeout: 60_000 });
    const stoppedAt = (await losses()).length;
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await losses()).length, stoppedAt, 'no step after the stop');
    assert.equal(await page.$eval('#model-select', (e: HTMLSelectElement) => e.value), 'trained');
    await shot(page, 'train', '#train-section');
    await page.click('#train-resume');
    await page.waitForFunction((n: number) => (window as any).ninPage.trainLosses().length > n, { timeout: 60_000 }, stoppedAt);
    await page.click('#train-stop');
    await page.waitForFunction(() => /Stopped/.test(document.getElementById('train-status')!.textContent!), { timeout: 60_000 });
    const steps = (await page.evaluate(() => (window as any).ninPage.timing())).trainSteps as number[];
    measurements.trainStepMs = Math.round(steps.sort((a, b) => a - b)[Math.floor(steps.length / 2)]);
    measurements.trainBackend = await page.evaluate(() => (window as any).ninPage.trainBackend());
  });

  test('nothing was requested from another origin, and nothing went wrong in the console', () => {
    const outside = requests.filter((u) => !u.startsWith(server.url) && !u.startsWith('data:') && !u.startsWith('blob:'));
    assert.deepEqual(outside, []);
    assert.ok(requests.some((u) => u.endsWith('.wasm')), 'the wasm binary came from the page\'s own origin');
    assert.deepEqual(errors, []);
  });
});
