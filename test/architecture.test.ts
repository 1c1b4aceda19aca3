/**
 * The library's layers: core ← storage ← kernels ← training ← frontends, each folder importing
 * only from its own and lower ones, no import cycles, nothing done at import time by the
 * index beyond loading modules, and a core that bundles for a browser with no Node built-in, as
 * does every module the web page and its training worker import (the training loop among them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../lib/storage/paths';

const LAYERS = ['core', 'storage', 'kernels', 'training', 'frontends'];
const lib = path.join(packageRoot(), 'lib');

/** Every .ts file of lib/, relative to it (e.g. core/model.ts). */
function sources(dir = lib): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith('.ts') ? [path.relative(lib, full)] : [];
  });
}

/** The lib/ files that `file` imports (type-only imports included), relative to lib/. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(lib, file), 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => `${path.relative(lib, path.resolve(path.dirname(path.join(lib, file)), s))}.ts`);
}

const layerOf = (file: string) => (file.includes('/') ? LAYERS.indexOf(file.split('/')[0]) : LAYERS.length);

test('every file of lib/ lives in a layer folder (only index.ts at the top)', () => {
  const stray = sources().filter((f) => layerOf(f) === -1 || (!f.includes('/') && f !== 'index.ts'));
  assert.deepEqual(stray, []);
});

test('imports only go down the layers: core ← storage ← kernels ← training ← frontends', () => {
  const upward = sources().flatMap((f) => importsOf(f).filter((t) => layerOf(t) > layerOf(f)).map((t) => `${f} → ${t}`));
  assert.deepEqual(upward, []);
});

test('no import cycles', () => {
  const graph = new Map(sources().map((f) => [f, importsOf(f)]));
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, trail: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(f)), f].join(' → '));
      return;
    }
    state.set(f, 'open');
    for (const t of graph.get(f) ?? []) visit(t, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(cycles, []);
});

test('the core is browser-safe: esbuild bundles it for a browser with no Node built-in', async () => {
  const esbuild = await import('esbuild');
  const core = sources().filter((f) => f.startsWith('core/'));
  const entry = core.map((f) => `export * from './${f.replace(/\.ts$/, '')}';`).join('\n');
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: lib, loader: 'ts' }, bundle: true, write: false, platform: 'browser',
    format: 'esm', logLevel: 'silent', metafile: true,
    // Node's built-ins fail the build when a core module reaches one.
    external: [],
  });
  const inputs = Object.keys(result.metafile!.inputs);
  assert.ok(inputs.some((i) => i.endsWith('lib/core/model.ts')), 'the bundle holds the core');
  const nodeOnly = inputs.filter((i) => /^(node:|fs$|path$)/.test(i) || i.includes('/lib/storage/') || i.includes('/lib/kernels/'));
  assert.deepEqual(nodeOnly, []);
});

/** The lib/ files that web/src imports (the page, its worker and their helpers), relative to lib/. */
function webImports(): string[] {
  const src = path.join(packageRoot(), 'web', 'src');
  const files = fs.readdirSync(src).filter((f) => f.endsWith('.ts'));
  const specs = files.flatMap((f) => [...fs.readFileSync(path.join(src, f), 'utf8').matchAll(/from\s+'\.\.\/\.\.\/lib\/([^']+)'/g)]
    .map((m) => `${m[1]}.ts`));
  return [...new Set(specs)].sort();
}

test('what the web page and its worker import from lib bundles for a browser as it stands: no Node built-in, no stand-ins', async () => {
  const esbuild = await import('esbuild');
  const imported = webImports();
  assert.ok(imported.includes('training/loop.ts'), 'the worker imports the training loop');
  const entry = imported.map((f, i) => `export * as m${i} from './${f.replace(/\.ts$/, '')}';`).join('\n');
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: lib, loader: 'ts' }, bundle: true, write: false, platform: 'browser',
    format: 'esm', logLevel: 'silent', metafile: true,
    // No plugin and no external: a Node built-in anywhere below these modules fails the build.
    external: [],
  });
  const inputs = Object.keys(result.metafile!.inputs);
  for (const f of ['lib/training/loop.ts', 'lib/kernels/fusedTraining.ts', 'lib/kernels/kernelNames.ts']) {
    assert.ok(inputs.some((i) => i.endsWith(f)), `the bundle holds ${f}`);
  }
  const nodeOnly = inputs.filter((i) => /^(node:|fs$|os$|path$)/.test(i) || i.includes('/lib/storage/') || i.endsWith('lib/kernels/native.ts'));
  assert.deepEqual(nodeOnly, []);
});

test('the bundle check can fail: a module that reads a file does not bundle for the browser', async () => {
  const esbuild = await import('esbuild');
  await assert.rejects(esbuild.build({
    stdin: { contents: "export * from './storage/files';", resolveDir: lib, loader: 'ts' }, bundle: true, write: false,
    platform: 'browser', logLevel: 'silent',
  }), /Could not resolve "node:fs"/);
});
