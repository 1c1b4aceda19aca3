/**
 * A real browser on a real Jupyter server: the chapter notebook, executed in the tiny profile,
 * served by Debian's classic `jupyter notebook` and opened in headless Chromium. Its charts
 * must render as drawings (SVG output areas), not as JSON or text. A screenshot is left in
 * out/browser-nin.png for a person to look at.
 *
 * The executed notebook is the test run's shared one (./executed.ts).
 *
 * Needs chromium, jupyter-notebook, jupyter-nbconvert and python3-nbclient (Debian) and the
 * Fashion-MNIST files; skipped without them unless NIN_REQUIRE_BROWSER=1 (CI).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../lib/storage/paths';
import { freePort, waitFor } from '../servers';
import { CHROMIUM as chromium, PYTHON as python, skipUnless } from '../optional';
import { executedNotebooks } from './executed';

const skip = skipUnless(['chromium', 'notebook', 'nbclient', 'data'], 'NIN_REQUIRE_BROWSER', 'the classic Notebook browser test');

const root = packageRoot();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-browser-'));
let server: ChildProcess | undefined;
let port = 0;



function chromiumRun(args: string[]): string {
  const r = spawnSync(chromium!, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${fs.mkdtempSync(path.join(work, 'profile-'))}`,
    '--virtual-time-budget=20000', ...args,
  ], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `chromium failed: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  if (skip) return;
  const run = executedNotebooks();
  assert.equal(run.status, 0, run.output);
  fs.copyFileSync(path.join(run.dir, 'nin.ipynb'), path.join(work, 'nin.ipynb')); // served from a folder of its own
  port = await freePort();
  server = spawn(python, ['-m', 'notebook', '--no-browser', `--port=${port}`, '--ip=127.0.0.1', '--allow-root',
    "--NotebookApp.token=''", "--NotebookApp.password=''", `--notebook-dir=${work}`],
  { stdio: 'ignore', env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: '1' } });
  await waitFor(`http://127.0.0.1:${port}/api`, 30_000);
});

after(() => {
  server?.kill('SIGTERM');
});

test('classic Notebook in Chromium draws the executed notebook\'s charts', { skip }, () => {
  const url = `http://127.0.0.1:${port}/notebooks/nin.ipynb`;
  const dom = chromiumRun(['--dump-dom', url]);
  const charts = dom.match(/class="output_subarea output_svg"[^>]*>\s*<div[^>]*>\s*<svg/g) ?? [];
  assert.ok(charts.length >= 4, `SVG chart outputs in the page: ${charts.length}`);
  assert.doesNotMatch(dom, /\$schema/, 'a vega-lite spec shown as text');
  assert.match(dom, /total\s+1,992,166/, 'the shape table');
  fs.mkdirSync(path.join(root, 'out'), { recursive: true });
  chromiumRun(['--window-size=1100,5000', `--screenshot=${path.join(root, 'out', 'browser-nin.png')}`, url]);
  assert.ok(fs.statSync(path.join(root, 'out', 'browser-nin.png')).size > 10_000, 'a screenshot with content');
});
