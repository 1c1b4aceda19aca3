#!/usr/bin/env node
// Builds the optional native convolution kernels (native/nin_conv.c, OpenBLAS) with npm's own
// node-gyp. Runs at `npm ci`; it never fails the install: without a compiler or OpenBLAS the
// project trains on wasm alone, and `nin` says so. Set NIN_SKIP_NATIVE=1 to skip it.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const logFile = path.join(root, 'build', 'native-build.log');
const hint = 'training will use wasm alone; for native speed: apt-get install libopenblas-dev g++ make, ' +
  'then npm run build:native';

function skip(why) {
  process.stderr.write(`nin: native convolutions not built (${why}); ${hint}\n`);
  process.exit(0);
}

/**
 * NIN_SKIP_NATIVE=1 skips the build, NIN_SKIP_DNNL=1 builds without oneDNN; 0, empty or unset
 * do neither. Checked as lib/core/validate.ts's envChoice checks the others (this script runs
 * at install, before the TypeScript is compiled): anything else is refused, naming the variable.
 */
function flag(name) {
  const value = process.env[name];
  if (value === undefined || value === '' || value === '0') return false;
  if (value === '1') return true;
  process.stderr.write(`nin: ${name} must be 0 or 1, got ${JSON.stringify(value)}\n`);
  process.exit(1);
}

const skipDnnl = flag('NIN_SKIP_DNNL');
if (flag('NIN_SKIP_NATIVE')) skip('NIN_SKIP_NATIVE=1');
if (process.platform !== 'linux') skip(`no build recipe for ${process.platform} yet`);
const headers = ['/usr/include/cblas.h', '/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h'];
if (!headers.some((h) => fs.existsSync(h))) skip('OpenBLAS headers (cblas.h) not found');

let gyp = process.env.npm_config_node_gyp;
if (!gyp || !fs.existsSync(gyp)) {
  try { gyp = require.resolve('node-gyp/bin/node-gyp.js'); } catch { skip('node-gyp not found'); }
}
// oneDNN (libdnnl-dev) runs the convolutions where it is installed; OpenBLAS the rest.
const dnnl = !skipDnnl && fs.existsSync('/usr/include/oneapi/dnnl/dnnl.h');
const run = spawnSync(process.execPath, [gyp, 'rebuild', '--', `-Dnin_dnnl=${dnnl ? 1 : 0}`], { cwd: root, encoding: 'utf8' });
fs.mkdirSync(path.dirname(logFile), { recursive: true });
fs.writeFileSync(logFile, `${run.stdout ?? ''}${run.stderr ?? ''}${run.error ? String(run.error) : ''}`);
if (run.status !== 0) skip(`node-gyp failed, see ${path.relative(root, logFile)}`);
process.stderr.write(`nin: native convolutions built (${dnnl ? 'oneDNN and OpenBLAS' : 'OpenBLAS; apt-get install libdnnl-dev for oneDNN'})\n`);
