#!/usr/bin/env node
// `npm start`: registers this project's tslab kernel with Jupyter (once, for this user) and
// opens notebooks/ in JupyterLab: the jupyterlab package where pip installed it, else this
// project's JupyterLab build (lab-app/, served by Debian's jupyter-server) where it is built,
// else the classic Jupyter Notebook; NIN_JUPYTER=jupyterlab|lab-app|notebook picks one. Set
// NIN_PYTHON to the Python that has Jupyter (default: /usr/bin/python3 on Debian, else python3).
'use strict';
const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const fail = (message) => { process.stderr.write(`npm start: ${message}\n`); process.exit(1); };
process.env.PYDEVD_DISABLE_FILE_VALIDATION ??= '1'; // quiet Debian Python's debugger warning
const python = process.env.NIN_PYTHON || (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const has = (module) => spawnSync(python, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;

if (!fs.existsSync(path.join(root, 'dist', 'lib', 'index.js'))) {
  if (spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' }).status !== 0) fail('build failed');
}
const tslab = path.join(root, 'node_modules', 'tslab', 'bin', 'tslab');
if (!fs.existsSync(tslab)) fail('tslab is missing: run npm ci first');
// Which Jupyter: the first one present, or the one NIN_JUPYTER names.
const available = {
  jupyterlab: () => has('jupyterlab'),
  'lab-app': () => fs.existsSync(path.join(root, 'lab-app', 'build', 'bundle.js')) && has('jupyterlab_server'),
  notebook: () => has('notebook'),
};
const forced = process.env.NIN_JUPYTER;
if (forced && !(forced in available)) fail(`NIN_JUPYTER must be one of ${Object.keys(available).join(', ')}, got "${forced}"`);
const jupyter = forced || Object.keys(available).find((name) => available[name]());
if (!jupyter || !available[jupyter]()) {
  fail(forced === 'lab-app'
    ? 'lab-app is not built or jupyterlab_server is missing: apt-get install python3-jupyter-server python3-jupyterlab-server; ' +
      'npm ci --prefix lab-app && npm run --prefix lab-app build'
    : `no ${forced ?? 'Jupyter'} found for ${python}: apt-get install jupyter-notebook (Debian) or pip install jupyterlab, ` +
      'or set NIN_PYTHON to a Python that has it');
}
const [lab, labApp] = [jupyter === 'jupyterlab', jupyter === 'lab-app'];

// Register (or refresh) the kernel so that it runs this project's tslab.
const specs = spawnSync(python, ['-m', 'jupyter_client.kernelspecapp', 'list', '--json'], { encoding: 'utf8' });
let current;
try { current = JSON.parse(specs.stdout).kernelspecs.tslab; } catch { current = undefined; }
const argv0 = current && current.spec && current.spec.argv && current.spec.argv.join(' ');
if (!argv0 || !argv0.includes(tslab)) {
  const install = spawnSync(process.execPath, [tslab, 'install', `--python=${python}`, `--binary=${tslab}`, '--user'],
    { cwd: root, stdio: 'inherit' });
  if (install.status !== 0) fail('could not register the tslab kernel (see above)');
  process.stderr.write(`npm start: registered the tslab kernel (${tslab})\n`);
}

const notebooks = path.join(root, 'notebooks');
const args = labApp
  ? [path.join(root, 'lab-app', 'main.py'), `--ServerApp.root_dir=${notebooks}`, ...process.argv.slice(2)]
  : ['-m', lab ? 'jupyterlab' : 'notebook', `--notebook-dir=${notebooks}`, ...process.argv.slice(2)];
// Jupyter refuses to start as root (common in containers and CI machines) without this flag.
if (process.getuid && process.getuid() === 0 && !args.some((a) => /allow.root/i.test(a))) {
  args.push(labApp ? '--ServerApp.allow_root=True' : '--allow-root');
  process.stderr.write('npm start: running as root, so Jupyter is started with --allow-root\n');
}
const which = lab ? 'JupyterLab' : labApp ? "JupyterLab 3.6 (this project's build in lab-app/, on Debian's jupyter-server)"
  : 'Jupyter Notebook (JupyterLab is not installed)';
process.stderr.write(`npm start: opening ${which} on notebooks/\n`);
const child = spawn(python, args, { cwd: path.join(root, 'notebooks'), stdio: 'inherit' });
child.on('exit', (code) => process.exit(code ?? 0));
