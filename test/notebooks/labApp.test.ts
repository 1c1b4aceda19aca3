/**
 * Real JupyterLab, here: the JupyterLab 3.6 front end built from npm (lab-app/), served by
 * Debian's jupyter-server and jupyterlab-server, opened in headless Chromium. The test opens
 * the chapter notebook, runs all its cells from JupyterLab's Run menu in the tslab kernel
 * (tiny profile), screenshots the live plot while it trains, and checks what the finished
 * notebook shows. Screenshots: out/lab-app-training.png, out/lab-app-nin.png.
 *
 * This is a deliberate execution of its own, not the test run's shared one (./executed.ts):
 * what it checks is JupyterLab running the cells, its live plot while the kernel trains.
 *
 * Needs chromium, python3-jupyter-server, python3-jupyterlab-server, a built lab-app
 * (`npm ci --prefix lab-app && npm run --prefix lab-app build`), test/jupyterlab's
 * packages (for Puppeteer) and the Fashion-MNIST files; skipped without them unless
 * NIN_REQUIRE_LABAPP=1 (CI).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../lib/storage/paths';
import { freePort, waitFor } from '../servers';
import { CHROMIUM as chromium, PUPPETEER as puppeteerPath, PYTHON as python, skipUnless } from '../optional';

const root = packageRoot();
const skip = skipUnless(['chromium', 'jupyterlab-server', 'lab-app', 'puppeteer', 'data'], 'NIN_REQUIRE_LABAPP', 'the JupyterLab app test');



/** A kernelspec folder whose `tslab` kernel runs this project's tslab. */
function kernelPath(dir: string): string {
  const spec = path.join(dir, 'kernels', 'tslab');
  fs.mkdirSync(spec, { recursive: true });
  fs.writeFileSync(path.join(spec, 'kernel.json'), JSON.stringify({
    argv: [process.execPath, path.join(root, 'node_modules', 'tslab', 'bin', 'tslab'), 'kernel', '--config-path', '{connection_file}'],
    display_name: 'TypeScript', language: 'typescript',
  }));
  return dir;
}

describe('JupyterLab (lab-app on Debian\'s server) runs the chapter notebook from its Run menu', { skip }, () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-lab-app-'));
  // One level below the package root, as notebooks/ is, so that the notebook's `import '..'` finds the library.
  const served = fs.mkdtempSync(path.join(root, '.lab-test-'));
  const token = 'nin-lab-app-test';
  let server: ChildProcess | undefined;
  let base = '';
  let browser: any; // eslint-disable-line @typescript-eslint/no-explicit-any

  before(async () => {
    fs.copyFileSync(path.join(root, 'notebooks', 'nin.ipynb'), path.join(served, 'nin.ipynb'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = spawn(python, [path.join(root, 'lab-app', 'main.py'), '--ServerApp.ip=127.0.0.1', `--ServerApp.port=${port}`,
      `--ServerApp.token=${token}`, '--ServerApp.open_browser=False', '--ServerApp.allow_root=True', `--ServerApp.root_dir=${served}`],
    {
      stdio: 'ignore',
      env: {
        ...process.env, JUPYTER_PATH: kernelPath(path.join(work, 'jupyter')), JUPYTER_RUNTIME_DIR: path.join(work, 'runtime'),
        JUPYTER_DATA_DIR: path.join(work, 'data'), NIN_PROFILE: 'tiny', NIN_RUNS_DIR: path.join(work, 'runs'),
        PYDEVD_DISABLE_FILE_VALIDATION: '1',
      },
    });
    await waitFor(`${base}/api/status?token=${token}`, 60_000);
    browser = await require(puppeteerPath).launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  });

  after(async () => {
    await browser?.close();
    server?.kill('SIGTERM');
    fs.rmSync(served, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('every cell runs, the live plot is drawn while it trains, and the finished notebook shows its charts', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e: Error) => pageErrors.push(e.message));
    await page.setViewport({ width: 1300, height: 900 });
    await page.goto(`${base}/lab/tree/nin.ipynb?token=${token}`);
    // The status bar says when the tslab kernel is up: "TypeScript | Idle".
    await page.waitForFunction(() => /TypeScript \| Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent ?? ''), { timeout: 60_000 });
    await clickMenu(page, 'Run', 'Run All Cells');

    // While the training cell runs ([*]), its plotly chart appears and is redrawn in place.
    await page.waitForFunction(() => Array.from(document.querySelectorAll('.jp-CodeCell')).some((c) =>
      /\[\*\]/.test(c.querySelector('.jp-InputPrompt')?.textContent ?? '') && c.querySelector('.jp-RenderedPlotly .main-svg')),
    { timeout: 180_000 });
    const training = await page.$$eval('.jp-CodeCell', (cells: Element[]) => cells.findIndex((c) => c.querySelector('.jp-RenderedPlotly')));
    const cells = await page.$$('.jp-CodeCell');
    await cells[training].scrollIntoView();
    fs.mkdirSync(path.join(root, 'out'), { recursive: true });
    await cells[training].screenshot({ path: path.join(root, 'out', 'lab-app-training.png') });

    // Then every code cell finishes with an execution count and no error.
    await page.waitForFunction(() => {
      const prompts = Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map((p) => p.textContent ?? '');
      return prompts.length > 0 && prompts.every((p) => /\[\d+\]/.test(p));
    }, { timeout: 600_000 });
    const shown = await page.evaluate(() => ({
      errors: document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').length,
      plotlyCurves: document.querySelectorAll('.jp-RenderedPlotly .scatterlayer .trace').length,
      // JupyterLab 3 knows vega-lite up to v4, so it draws the bundles' SVG (in a trusted notebook: one that ran here).
      charts: Array.from(document.querySelectorAll('.jp-RenderedSVG img, .jp-RenderedVegaCommon5'))
        .filter((c) => (c as HTMLImageElement).naturalWidth > 0 || c.querySelector('canvas, svg')).length,
      text: document.body.innerText,
    }));
    await page.screenshot({ path: path.join(root, 'out', 'lab-app-nin.png') });
    assert.equal(shown.errors, 0, 'error outputs');
    assert.equal(shown.plotlyCurves, 3, 'train loss, train acc and test acc, drawn by plotly');
    assert.ok(shown.charts >= 8, `other charts drawn: ${shown.charts}`);
    assert.match(shown.text, /total\s+1,992,166/);
    assert.match(shown.text, /loss [\d.]+, train acc [\d.]+, test acc [\d.]+/);
    assert.deepEqual(pageErrors, []);
    await page.close();
  });
});

/** Clicks `item` in JupyterLab's `menu` of the menu bar, as a user would. */
async function clickMenu(page: any, menu: string, item: string): Promise<void> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const click = async (selector: string, label: string) => {
    const handles = await page.$$(selector);
    for (const h of handles) {
      if ((await h.evaluate((e: Element) => e.textContent?.trim())) === label) return h.click();
    }
    throw new Error(`no "${label}" in ${selector}`);
  };
  await click('.lm-MenuBar-itemLabel', menu);
  await page.waitForSelector('.lm-Menu-itemLabel', { timeout: 10_000 });
  await click('.lm-Menu-itemLabel', item);
}
