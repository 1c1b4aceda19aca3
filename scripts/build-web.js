#!/usr/bin/env node
// Builds the web page (web/) into a static folder any web server can serve:
//
//   node scripts/build-web.js [--out DIR] [--no-check]      (default DIR: dist/web)
//
// - type-checks web/ (web/tsconfig.json) unless --no-check;
// - bundles web/src/main.ts (the page) and web/src/worker.ts (its training Web Worker) with
//   esbuild, tfjs and the library's lib/core and lib/training/loop.ts included: nothing is
//   fetched from elsewhere, and no Node built-in is stubbed (test/architecture.test.ts checks
//   that what the worker imports bundles for a browser as it stands);
// - copies index.html, style.css, web/assets/ (the shipped model and images) and
//   tfjs-backend-wasm's .wasm files (served from the page's own origin, under wasm/).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function copyDir(from, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, entry.name);
    const b = path.join(to, entry.name);
    if (entry.isDirectory()) copyDir(a, b);
    else if (entry.isFile()) fs.copyFileSync(a, b);
  }
}

async function main() {
  const out = path.resolve(arg('--out', path.join(root, 'dist', 'web')));
  const web = path.join(root, 'web');
  if (!process.argv.includes('--no-check')) {
    const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(web, 'tsconfig.json')],
      { stdio: 'inherit' });
    if (tsc.status !== 0) throw new Error('web/: type errors (above)');
  }
  const esbuild = require('esbuild');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  await esbuild.build({
    entryPoints: { main: path.join(web, 'src', 'main.ts'), worker: path.join(web, 'src', 'worker.ts') },
    outdir: out,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    // lib/core/plots.ts requires vega for its Node-only SVG rendering, which the page never calls.
    external: ['vega', 'vega-lite'],
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  for (const f of ['index.html', 'style.css']) fs.copyFileSync(path.join(web, f), path.join(out, f));
  copyDir(path.join(web, 'assets'), path.join(out, 'assets'));
  const wasmDir = path.join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  fs.mkdirSync(path.join(out, 'wasm'));
  for (const f of fs.readdirSync(wasmDir).filter((n) => n.endsWith('.wasm'))) {
    fs.copyFileSync(path.join(wasmDir, f), path.join(out, 'wasm', f));
  }
  const bytes = (dir) => fs.readdirSync(dir, { withFileTypes: true })
    .reduce((s, e) => s + (e.isDirectory() ? bytes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size), 0);
  console.log(`web page built in ${path.relative(process.cwd(), out) || '.'} (${(bytes(out) / 1e6).toFixed(1)} MB)`);
}

main().catch((err) => { console.error(`build-web: ${err.message}`); process.exit(1); });
