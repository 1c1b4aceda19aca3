/**
 * The optional parts some tests need, in one place: the Fashion-MNIST files, the native addon,
 * Jupyter, Chromium, and the packages of test/jupyterlab and lab-app. Whether each is here,
 * and what a suite does without one: it is skipped, saying what is missing and how to get it,
 * unless a NIN_REQUIRE_* variable says it must run (CI, where everything was installed), when
 * a failing test takes its place. (No tests here.)
 *
 * A suite's own variable (NIN_REQUIRE_NOTEBOOKS, _BROWSER, _JUPYTERLAB, _LABAPP) makes anything
 * it needs required; NIN_REQUIRE_DATA and NIN_REQUIRE_NATIVE make the data set and the addon
 * required wherever a suite needs them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../lib/storage/paths';
import { DEBIAN_FASHION_MNIST_DIR, locateFashionMnist, resolveDataConfig } from '../lib/storage/fashionMnistFiles';
import { nativeAddonPath } from '../lib/kernels/native';
import { errorSummary } from '../lib/core/validate';

/**
 * A part a test may need. 'data' is Fashion-MNIST wherever the library would find it;
 * 'debian-data' its Debian package's copy in particular (DEBIAN_FASHION_MNIST_DIR).
 */
export type Need = 'data' | 'debian-data' | 'native' | 'nbclient' | 'notebook' | 'chromium' | 'jupyterlab-server' | 'lab-app' | 'puppeteer';

/** The variables that turn a skip into a failure. */
export type RequireVariable = 'NIN_REQUIRE_DATA' | 'NIN_REQUIRE_NATIVE' | 'NIN_REQUIRE_NOTEBOOKS' | 'NIN_REQUIRE_BROWSER' |
  'NIN_REQUIRE_JUPYTERLAB' | 'NIN_REQUIRE_LABAPP';

/** Debian's Python, the one Jupyter's Debian packages install into. */
export const PYTHON = '/usr/bin/python3';
/** Debian's Chromium, where it is installed. */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

const root = packageRoot();
/** puppeteer-core, from test/jupyterlab's own packages. */
export const PUPPETEER = path.join(root, 'test', 'jupyterlab', 'node_modules', 'puppeteer-core');

const pythonImports = (modules: string) => fs.existsSync(PYTHON) &&
  spawnSync(PYTHON, ['-c', `import ${modules}`], { stdio: 'ignore' }).status === 0;

/** Per part: undefined when it is here, else what is missing and how to get it. */
const CHECKS: Record<Need, () => string | undefined> = {
  data: () => {
    try {
      return locateFashionMnist(resolveDataConfig({ download: false })) ? undefined
        : 'Fashion-MNIST not found (apt-get install dataset-fashion-mnist, or set FASHION_MNIST_DIR)';
    } catch (err) {
      return `Fashion-MNIST: ${errorSummary(err)}`;
    }
  },
  'debian-data': () => (fs.existsSync(DEBIAN_FASHION_MNIST_DIR) ? undefined
    : `${DEBIAN_FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)`),
  native: () => (fs.existsSync(nativeAddonPath()) ? undefined : 'native addon not built (npm run build:native)'),
  nbclient: () => (pythonImports('nbclient, nbconvert') ? undefined : 'apt-get install jupyter-nbconvert python3-nbclient'),
  notebook: () => (pythonImports('notebook') ? undefined : 'apt-get install jupyter-notebook'),
  chromium: () => (CHROMIUM ? undefined : 'apt-get install chromium'),
  'jupyterlab-server': () => (pythonImports('jupyterlab_server, jupyter_server') ? undefined
    : 'apt-get install python3-jupyter-server python3-jupyterlab-server'),
  'lab-app': () => (fs.existsSync(path.join(root, 'lab-app', 'build', 'bundle.js')) ? undefined
    : 'lab-app not built (npm ci --prefix lab-app && npm run --prefix lab-app build)'),
  puppeteer: () => (fs.existsSync(PUPPETEER) ? undefined : 'npm ci --prefix test/jupyterlab'),
};

/** The parts whose own variable makes them required wherever they are needed. */
const OWN_VARIABLE: Partial<Record<Need, RequireVariable>> = {
  data: 'NIN_REQUIRE_DATA', 'debian-data': 'NIN_REQUIRE_DATA', native: 'NIN_REQUIRE_NATIVE',
};

const seen = new Map<Need, string | undefined>();

/** Why `need` is not here (what to install), or undefined when it is. Checked once per process. */
export function absent(need: Need): string | undefined {
  if (!seen.has(need)) seen.set(need, CHECKS[need]());
  return seen.get(need);
}

/** Whether `variable` says its tests must run. */
export function required(variable: RequireVariable): boolean {
  return process.env[variable] === '1';
}

/**
 * The `skip` option of tests that need `needs`: false when all are here, else the reason
 * ("missing: ..."). When something is missing and `variable` (the tests' own NIN_REQUIRE_*)
 * or that part's own variable is 1, a failing test named after `what` is added: there the
 * absence is a failure, not a skip.
 */
export function skipUnless(needs: Need[], variable: RequireVariable | undefined, what: string): false | string {
  const missing = needs.filter((n) => absent(n) !== undefined);
  if (missing.length === 0) return false;
  const reason = `missing: ${missing.map((n) => absent(n)).join('; ')}`;
  const requiredBy = [variable, ...missing.map((n) => OWN_VARIABLE[n])]
    .filter((v): v is RequireVariable => v !== undefined && required(v));
  if (requiredBy.length > 0) {
    test(`${what} can run (${requiredBy.map((v) => `${v}=1`).join(', ')})`, () => assert.fail(reason));
  }
  return reason;
}
