#!/usr/bin/env node
// Measures the web page on WebGL in headless Chromium, once, by hand (not part of `npm test`):
//
//   node scripts/measure-webgl.js [--site DIR] [--cap SECONDS] [--train-cap SECONDS] [--out FILE]
//
// Without a GPU, Chromium's WebGL is SwiftShader: a GPU emulated on the CPU. The page passes it
// over for wasm (web/src/backend.ts); this script forces it (`?backend=webgl`, Chromium started
// with --use-angle=swiftshader --enable-unsafe-swiftshader) to put numbers on that choice:
// the time to the first prediction, one prediction with all maps and activations (in a 195-px
// frame, as test/web/page.test.ts measures it on wasm), and training steps of the quick recipe
// in the worker. On a machine with a GPU, Chromium uses it instead and the numbers are the GPU's.
//
// Needs `npm run build` (dist/lib and dist/web; --site for another build of the page),
// chromium and puppeteer-core (npm ci --prefix test/jupyterlab). The page's load and its
// predictions stop after --cap seconds (default 300), training after --train-cap more (default
// 300): what finished by then is printed, the rest marked as not reached.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function main() {
  const site = path.resolve(arg('--site', path.join(root, 'dist', 'web')));
  const capSeconds = Number(arg('--cap', '300'));
  const trainCapSeconds = Number(arg('--train-cap', '300'));
  const outFile = arg('--out', path.join(root, 'out', 'webgl-measurements.json'));
  const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
  if (!chromium) throw new Error('no Chromium: apt-get install chromium');
  const puppeteer = require(path.join(root, 'test', 'jupyterlab', 'node_modules', 'puppeteer-core'));
  const { startWebServer } = require(path.join(root, 'dist', 'lib', 'frontends', 'web.js'));

  const started = Date.now();
  let deadline = started + capSeconds * 1000;
  const left = () => Math.max(1, deadline - Date.now());
  const result = { date: new Date().toISOString(), capSeconds, trainCapSeconds, notes: [] };
  const server = await startWebServer({ root: site, port: 0 });
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true, protocolTimeout: (capSeconds + trainCapSeconds) * 1000 + 60_000,
    args: ['--no-sandbox', '--no-first-run', '--disable-dev-shm-usage', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
  });
  result.browser = await browser.version();
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1150, height: 900 });
    page.on('console', (m) => { if (m.type() === 'error') result.notes.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => result.notes.push(`page: ${e.message}`));
    const loadStart = Date.now();
    await page.goto(`${server.url}?backend=webgl`);
    // The page's own clock: performance.now() at the first prediction, from navigation.
    await page.waitForFunction(() => Number.isFinite(window.ninPage?.timing().firstPrediction), { timeout: left(), polling: 1000 })
      .catch(() => { throw new Error(`no first prediction within ${capSeconds} s (${Math.round((Date.now() - loadStart) / 1000)} s waited)`); });
    result.backend = await page.evaluate(() => window.ninPage.backend());
    result.status = await page.$eval('#status', (e) => e.textContent);
    result.firstPredictionMs = Math.round(await page.evaluate(() => window.ninPage.timing().firstPrediction));
    console.error(`first prediction: ${(result.firstPredictionMs / 1000).toFixed(1)} s on ${result.backend}`);

    // One prediction with all maps and activations, in a 195-px frame (two forward passes): the
    // first at that size compiles its shaders, the ones after it do not.
    const predictions = [];
    for (let i = 0; i < 3 && left() > 1000; i++) {
      predictions.push(Math.round(await page.evaluate(() => {
        window.ninPage.setMapSize(195);
        window.ninPage.update();
        return window.ninPage.timing().lastUpdate;
      })));
    }
    result.predictionWithAllMapsMs = predictions;
    console.error(`one prediction with all maps (195-px frame): ${predictions.join(', ')} ms`);

    // Training steps of the quick recipe (batch 32, 67 px) in the worker, as long as the cap allows.
    if (left() > 1000) {
      const clicked = Date.now();
      deadline = clicked + trainCapSeconds * 1000;
      await page.select('#recipe', 'quick');
      await page.click('#train-start');
      const steps = (n) => page.waitForFunction((k) => window.ninPage.trainLosses().length >= k, { timeout: left(), polling: 500 }, n)
        .then(() => true, () => false);
      // The first step also starts the worker's backend, loads the training images and compiles shaders.
      if (await steps(1)) result.secondsToFirstStep = Math.round((Date.now() - clicked) / 1000);
      const wanted = 4;
      if (!(await steps(wanted))) result.notes.push(`training: fewer than ${wanted} steps within the cap`);
      result.trainBackend = await page.evaluate(() => window.ninPage.trainBackend());
      result.trainSteps = (await page.evaluate(() => window.ninPage.trainLosses())).length;
      // Intervals between the worker's step messages (the page's timing: from the second step on).
      result.trainStepMs = (await page.evaluate(() => window.ninPage.timing().trainSteps)).map(Math.round);
      result.secondsFromStartClick = Math.round((Date.now() - clicked) / 1000);
      result.trainStatus = await page.$eval('#train-status', (e) => e.textContent); // the worker's last word, an error included
      console.error(`training on ${result.trainBackend}: ${result.trainSteps} steps in ${result.secondsFromStartClick} s; steps after the first: ${result.trainStepMs.join(', ')} ms`);
    } else {
      result.notes.push('training: not reached within the cap');
    }
  } finally {
    result.totalSeconds = Math.round((Date.now() - started) / 1000);
    await browser.close();
    await server.close();
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  }
}

main().catch((err) => { console.error(`measure-webgl: ${err.message}`); process.exit(1); });
