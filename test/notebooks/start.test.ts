/**
 * `npm start` (scripts/start.js), as the README tells a new user to run it: it registers this
 * project's tslab kernel and serves notebooks/ with Jupyter, as root too (CI machines and
 * containers run as root, where Jupyter refuses to start unless told --allow-root).
 *
 * Runs with a throw-away HOME, so the kernel it registers lands there, not in the user's own
 * Jupyter folder. Needs Debian's jupyter-notebook; skipped without it unless
 * NIN_REQUIRE_NOTEBOOKS=1 (CI).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../lib/storage/paths';
import { freePort } from '../servers';
import { skipUnless } from '../optional';

const skip = skipUnless(['notebook'], 'NIN_REQUIRE_NOTEBOOKS', 'npm start with Jupyter Notebook');

const root = packageRoot();
let child: ChildProcess | undefined;


let exited: number | null | undefined;

/** GETs `url` as JSON until it answers; fails after `ms`, or at once if npm start has exited. */
async function getJson(url: string, ms: number): Promise<unknown> {
  const until = Date.now() + ms;
  for (;;) {
    if (exited !== undefined) throw new Error(`npm start exited (${exited}) before ${url} answered`);
    try {
      const r = await fetch(url);
      if (r.ok) return await r.json();
    } catch { /* not up yet */ }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

after(() => {
  // start.js runs Jupyter as its own child: stop the whole group.
  if (child?.pid !== undefined) {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
  }
});

const skipLabApp = skipUnless(['lab-app', 'jupyterlab-server'], 'NIN_REQUIRE_LABAPP', 'npm start with lab-app');

for (const [jupyter, tokenFlag, skipIt] of [
  ['notebook', "--NotebookApp.token=''", skip],
  ['lab-app', "--ServerApp.token=''", skipLabApp],
] as const) {
  test(`npm start (NIN_JUPYTER=${jupyter}) registers the tslab kernel and serves both notebooks`, { skip: skipIt }, () => startAndCheck(jupyter, tokenFlag));
}

async function startAndCheck(jupyter: string, tokenFlag: string): Promise<void> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-start-'));
  const port = await freePort();
  let err = '';
  exited = undefined;
  child = spawn(process.execPath, [path.join(root, 'scripts', 'start.js'), '--no-browser', `--port=${port}`,
    '--ip=127.0.0.1', tokenFlag], {
    cwd: root, detached: true, stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, HOME: home, JUPYTER_DATA_DIR: '', JUPYTER_PATH: '', NIN_JUPYTER: jupyter },
  });
  child.stderr!.on('data', (d) => { err += d; });
  child.on('exit', (code) => { exited = code; });
  const base = `http://127.0.0.1:${port}/api`;
  let contents: { content: { name: string }[] };
  try {
    contents = await getJson(`${base}/contents`, 60_000) as typeof contents;
  } catch (e) {
    assert.fail(`${(e as Error).message}; npm start said:\n${err}`);
  }
  assert.deepEqual(contents.content.map((c) => c.name).sort(), ['exercises.ipynb', 'nin.ipynb']);
  const specs = await getJson(`${base}/kernelspecs`, 5_000) as { kernelspecs: Record<string, { spec: { argv: string[] } }> };
  assert.ok(specs.kernelspecs.tslab, `kernels: ${Object.keys(specs.kernelspecs)}`);
  assert.ok(specs.kernelspecs.tslab.spec.argv.join(' ').includes(path.join(root, 'node_modules', 'tslab')),
    'the kernel runs this project\'s tslab');
  assert.match(err, /registered the tslab kernel/);
  if (process.getuid?.() === 0) assert.match(err, /running as root, so Jupyter is started with --allow-root/);
  assert.match(err, jupyter === 'lab-app' ? /opening JupyterLab 3\.6 \(this project's build/ : /opening Jupyter Notebook/);
  if (exited === undefined) {
    const gone = new Promise((r) => child!.once('exit', r));
    process.kill(-child.pid!, 'SIGTERM');
    await gone;
  }
}
