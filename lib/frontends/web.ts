/**
 * `nin web`: serves the built web page (dist/web, made by `npm run build`) on 127.0.0.1, and
 * with `--model DIR` a checkpoint of the user's own, loaded and checked by the library
 * (`loadModelFromDir`, which verifies its checksums, then {@link checkNinModel}) and handed to
 * the page as /served/model.json + /served/weights.bin. The page itself is static: any web
 * server can serve dist/web (without a served model it shows the one shipped in it).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ConfigError } from '../core/validate';
import { loadModelFromDir } from '../storage/checkpoint';
import { packageRoot } from '../storage/paths';
import { selectBackend } from '../kernels/backend';
import type { Io } from './reporter';
import { checkNinModel } from './webModel';

/** Where `npm run build` puts the page. */
export function webRoot(): string {
  return path.join(packageRoot(), 'dist', 'web');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png', '.bin': 'application/octet-stream',
  '.idx': 'application/octet-stream', '.svg': 'image/svg+xml', '.txt': 'text/plain; charset=utf-8',
};

/** Nothing the page loads may come from elsewhere (the page sets the same policy in a meta tag). */
export const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; " +
  "img-src 'self' data: blob:; style-src 'self'; worker-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'";

/** A model in memory as the page fetches it: model.json (its manifest naming weights.bin) and the float32 weights. */
export interface ServedModel {
  json: string;
  weights: Uint8Array;
  /** Shown by the page: where it came from. */
  about: { path: string; note?: string; inputSize: number; epochsCompleted?: number };
}

/** `model`'s files for the page. */
export async function servedModel(model: tfl.LayersModel, about: ServedModel['about']): Promise<ServedModel> {
  let served: ServedModel | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    const weights = new Uint8Array(a.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(a.weightData));
    const json = JSON.stringify({
      format: 'layers-model', generatedBy: a.generatedBy, convertedBy: null, modelTopology: a.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs ?? [] }], userDefinedMetadata: { served: about },
    });
    served = { json, weights, about };
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
  }));
  return served!;
}

export interface WebServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `root` (default: the built page) and `model` on 127.0.0.1:`port` (0: any free port). */
export async function startWebServer(options: { root?: string; port?: number; model?: ServedModel } = {}): Promise<WebServer> {
  const root = path.resolve(options.root ?? webRoot());
  if (!fs.existsSync(path.join(root, 'index.html'))) {
    throw new ConfigError(`the web page is not built (no ${path.join(root, 'index.html')}): run \`npm run build\` in the project folder first`);
  }
  const model = options.model;
  const server = http.createServer((req, res) => {
    const send = (status: number, type: string, body: string | Uint8Array) => {
      res.writeHead(status, {
        'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache',
        'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'X-Content-Type-Options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, TYPES['.txt'], 'only GET and HEAD\n');
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    } catch {
      return send(400, TYPES['.txt'], 'bad path\n');
    }
    if (model && pathname === '/served/model.json') return send(200, TYPES['.json'], model.json);
    if (model && pathname === '/served/weights.bin') return send(200, TYPES['.bin'], model.weights);
    const file = path.resolve(root, `.${pathname.endsWith('/') ? `${pathname}index.html` : pathname}`);
    const inside = path.relative(root, file);
    if (inside.startsWith('..') || path.isAbsolute(inside)) return send(404, TYPES['.txt'], 'not found\n');
    let body: Buffer;
    try {
      if (!fs.statSync(file).isFile()) return send(404, TYPES['.txt'], 'not found\n');
      body = fs.readFileSync(file);
    } catch {
      return send(404, TYPES['.txt'], 'not found\n');
    }
    return send(200, TYPES[path.extname(file)] ?? 'application/octet-stream', body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE'
      ? new ConfigError((n) => `port ${options.port} is in use; pass another ${n} (or 0 for any free one)`, 'port') : err));
    server.listen(options.port ?? 8000, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** `--model DIR` for the page: loaded by the library (checksums verified), checked to be a NiN. */
export async function loadServedModel(dir: string): Promise<ServedModel> {
  await selectBackend();
  const loaded = await loadModelFromDir(dir);
  try {
    const check = checkNinModel(loaded.model);
    if (!check.ok) throw new ConfigError((n) => `${n} ${dir} is not a NiN the page can show: ${check.problem}`, 'modelDir');
    return await servedModel(loaded.model, {
      path: loaded.path, note: loaded.note, inputSize: check.shape.inputSize, epochsCompleted: loaded.state?.epochsCompleted,
    });
  } finally {
    loaded.model.dispose();
  }
}

interface WebOpts { model?: string; port?: number }

function portArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new ConfigError(`--port must be an integer from 0 to 65535, got ${value}`);
  return n;
}

async function web(opts: WebOpts, io: Io): Promise<void> {
  const model = opts.model === undefined ? undefined : await loadServedModel(opts.model);
  if (model?.about.note) io.err(`nin: note: ${model.about.note}\n`);
  const server = await startWebServer({ port: opts.port ?? 8000, model });
  const url = model ? `${server.url}?model=served` : server.url;
  io.out(`serving the NiN web page at ${url}\n` +
    (model ? `  model: ${model.about.path} (${model.about.inputSize} px)\n` : '  model: the one shipped with the page\n') +
    '  Ctrl-C stops it\n');
  await new Promise<void>((resolve) => {
    const stop = () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); void server.close().then(resolve); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Adds `nin web` to the command line. */
export function addWeb(cmd: Command, io: Io, run: (work: () => Promise<void>) => Promise<void>): void {
  cmd.command('web')
    .description('serve the web page on 127.0.0.1: look inside the trained NiN, draw for it, train it in the browser')
    .option('--model <dir>', 'show this model instead of the shipped one: a checkpoint directory or a folder with model.json')
    .option('--port <n>', 'port on 127.0.0.1 (default 8000; 0: any free port)', portArg)
    .action((opts: WebOpts) => run(() => web(opts, io)));
}
