#!/usr/bin/env node
// `npm start`: registers this project's tslab kernel with Jupyter (once, for this user) and
// opens JupyterLab on notebooks/, or the classic Jupyter Notebook where JupyterLab is not
// installed. Set NIN_PYTHON to the Python that has Jupyter (default: /usr/bin/python3 on
// Debian, else python3).
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
  if (spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' }).status !== 0) fail('build failed');
}
const tslab = path.join(root, 'node_modules', 'tslab', 'bin', 'tslab');
if (!fs.existsSync(tslab)) fail('tslab is missing: run npm ci first');
const lab = has('jupyterlab');
if (!lab && !has('notebook')) {
  fail(`no Jupyter found for ${python}: apt-get install jupyter-notebook (Debian) or pip install jupyterlab, ` +
    'or set NIN_PYTHON to a Python that has it');
}

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

const args = ['-m', lab ? 'jupyterlab' : 'notebook', `--notebook-dir=${path.join(root, 'notebooks')}`, ...process.argv.slice(2)];
// Jupyter refuses to start as root (common in containers and CI machines) without this flag.
if (process.getuid && process.getuid() === 0 && !args.includes('--allow-root')) {
  args.push('--allow-root');
  process.stderr.write('npm start: running as root, so Jupyter is started with --allow-root\n');
}
process.stderr.write(`npm start: opening ${lab ? 'JupyterLab' : 'Jupyter Notebook (JupyterLab is not installed)'} on notebooks/\n`);
const child = spawn(python, args, { cwd: path.join(root, 'notebooks'), stdio: 'inherit' });
child.on('exit', (code) => process.exit(code ?? 0));
