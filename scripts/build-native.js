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

if (process.env.NIN_SKIP_NATIVE) skip('NIN_SKIP_NATIVE is set');
if (process.platform !== 'linux') skip(`no build recipe for ${process.platform} yet`);
const headers = ['/usr/include/cblas.h', '/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h'];
if (!headers.some((h) => fs.existsSync(h))) skip('OpenBLAS headers (cblas.h) not found');

let gyp = process.env.npm_config_node_gyp;
if (!gyp || !fs.existsSync(gyp)) {
  try { gyp = require.resolve('node-gyp/bin/node-gyp.js'); } catch { skip('node-gyp not found'); }
}
// oneDNN (libdnnl-dev) runs the convolutions where it is installed; OpenBLAS the rest.
const dnnl = fs.existsSync('/usr/include/oneapi/dnnl/dnnl.h') && !process.env.NIN_SKIP_DNNL;
const run = spawnSync(process.execPath, [gyp, 'rebuild', '--', `-Dnin_dnnl=${dnnl ? 1 : 0}`], { cwd: root, encoding: 'utf8' });
fs.mkdirSync(path.dirname(logFile), { recursive: true });
fs.writeFileSync(logFile, `${run.stdout ?? ''}${run.stderr ?? ''}${run.error ? String(run.error) : ''}`);
if (run.status !== 0) skip(`node-gyp failed, see ${path.relative(root, logFile)}`);
process.stderr.write(`nin: native convolutions built (${dnnl ? 'oneDNN and OpenBLAS' : 'OpenBLAS; apt-get install libdnnl-dev for oneDNN'})\n`);
