import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { batches, FASHION_MNIST_CLASSES, FashionMnistSplit, numBatches } from '../../lib/core/fashionMnist';
import {
  DEBIAN_FASHION_MNIST_DIR,
  FASHION_MNIST_BASE_URL,
  FASHION_MNIST_FILES,
  FASHION_MNIST_MD5,
  FashionMnistFile,
  SearchPlaces,
  downloadFashionMnist,
  loadFashionMnist,
  locateFashionMnist,
  projectDataDir,
  resolveDataConfig,
} from '../../lib/storage/fashionMnistFiles';
import { readIdxFile } from '../../lib/storage/idxFile';
import { ConfigError } from '../../lib/core/validate';
import { idxBytes } from '../fixtures';
import { skipUnless } from '../optional';

test.before(async () => {
  await tf.setBackend('cpu');
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-fashion-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let dirCount = 0;
function freshDir(): string {
  const dir = path.join(tmp, `d${dirCount++}`);
  fs.mkdirSync(dir);
  return dir;
}

interface Fixture {
  trainCount?: number;
  testCount?: number;
  side?: number;
  gzip?: boolean;
  trainLabels?: Uint8Array;
}

/** The four files' contents: pixel p of example i is (i * 7 + p) % 256, label i % 10. */
function fixtureFiles({ trainCount = 12, testCount = 5, side = 28, trainLabels }: Fixture = {}): Record<FashionMnistFile, Buffer> {
  const pixels = side * side;
  const images = (n: number) =>
    idxBytes([n, side, side], Uint8Array.from({ length: n * pixels }, (_, k) => (Math.floor(k / pixels) * 7 + (k % pixels)) % 256));
  const labels = (n: number) => idxBytes([n], Uint8Array.from({ length: n }, (_, i) => i % 10));
  return {
    trainImages: images(trainCount),
    trainLabels: trainLabels ? idxBytes([trainLabels.length], trainLabels) : labels(trainCount),
    testImages: images(testCount),
    testLabels: labels(testCount),
  };
}

/** Writes the four fixture files into `dir` (gzipped as NAME.gz by default). */
function writeFixture(dir: string, fixture: Fixture = {}): string {
  const gzip = fixture.gzip ?? true;
  const files = fixtureFiles(fixture);
  for (const role of Object.keys(files) as FashionMnistFile[]) {
    const name = FASHION_MNIST_FILES[role];
    fs.writeFileSync(path.join(dir, gzip ? `${name}.gz` : name), gzip ? zlib.gzipSync(files[role]) : files[role]);
  }
  return dir;
}

/** Places with no environment and nothing in data/ or the Debian directory. */
function emptyPlaces(): SearchPlaces {
  return { env: {}, projectDir: path.join(tmp, 'no-project-data'), debianDir: path.join(tmp, 'no-debian') };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Asserts a one-line ConfigError that mentions each of `parts` (strings literally, regexes as such). */
function assertConfigError(err: unknown, ...parts: (string | RegExp)[]): true {
  assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
  assert.doesNotMatch(err.message, /\n/, 'message should be one line');
  for (const part of parts) assert.match(err.message, typeof part === 'string' ? new RegExp(escape(part)) : part);
  return true;
}

/** Sets FASHION_MNIST_DIR for one test and restores it afterwards. */
function withEnv(t: { after: (fn: () => void) => void }, value: string | undefined): void {
  const saved = process.env.FASHION_MNIST_DIR;
  t.after(() => {
    if (saved === undefined) delete process.env.FASHION_MNIST_DIR;
    else process.env.FASHION_MNIST_DIR = saved;
  });
  if (value === undefined) delete process.env.FASHION_MNIST_DIR;
  else process.env.FASHION_MNIST_DIR = value;
}

// ---------------------------------------------------------------------------------------------
// Config

test('resolveDataConfig fills the documented defaults', () => {
  const config = resolveDataConfig();
  assert.deepEqual(config, {
    dataDir: undefined,
    download: true,
    trainLimit: undefined,
    testLimit: undefined,
    baseUrl: FASHION_MNIST_BASE_URL,
    checksums: FASHION_MNIST_MD5,
  });
  assert.equal(FASHION_MNIST_CLASSES.length, 10);
  assert.equal(FASHION_MNIST_CLASSES[9], 'ankle boot');
});

test('resolveDataConfig rejects bad options with one-line messages', () => {
  assert.throws(() => resolveDataConfig({ trainLimt: 5 } as never), (e) => assertConfigError(e, 'unknown data option "trainLimt"'));
  assert.throws(() => resolveDataConfig({ trainLimit: 0 }), (e) => assertConfigError(e, 'trainLimit must be an integer >= 1, got 0'));
  assert.throws(() => resolveDataConfig({ testLimit: 2.5 }), (e) => assertConfigError(e, 'testLimit'));
  assert.throws(() => resolveDataConfig({ dataDir: '' }), (e) => assertConfigError(e, 'dataDir must be a directory path'));
  assert.throws(() => resolveDataConfig({ download: 'yes' as never }), (e) => assertConfigError(e, 'download must be true or false'));
  assert.throws(() => resolveDataConfig({ baseUrl: 'ftp://example.org/' }), (e) => assertConfigError(e, 'baseUrl must be an http:// or https:// URL'));
  assert.throws(
    () => resolveDataConfig({ checksums: { ...FASHION_MNIST_MD5, testLabels: 'abc' } }),
    (e) => assertConfigError(e, 'checksums.testLabels must be an md5 of 32 hex digits'),
  );
  assert.equal(resolveDataConfig({ baseUrl: 'http://127.0.0.1:8080/mirror' }).baseUrl, 'http://127.0.0.1:8080/mirror/');
});

test('projectDataDir is data/ next to package.json', () => {
  const dir = projectDataDir();
  assert.equal(path.basename(dir), 'data');
  const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(dir), 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'nin-tfjs');
});

// ---------------------------------------------------------------------------------------------
// Locating

test('locate order: option, then FASHION_MNIST_DIR, then data/, then Debian', (t) => {
  const [option, env, project, debian] = [0, 1, 2, 3].map(() => writeFixture(freshDir()));
  const places = { projectDir: project, debianDir: debian }; // env: process.env
  const config = resolveDataConfig();

  withEnv(t, env);
  assert.equal(locateFashionMnist(resolveDataConfig({ dataDir: option }), places)?.source, 'option');
  assert.deepEqual(locateFashionMnist(config, places), {
    dir: env,
    source: 'env',
    files: Object.fromEntries(Object.entries(FASHION_MNIST_FILES).map(([role, name]) => [role, path.join(env, `${name}.gz`)])),
  });

  delete process.env.FASHION_MNIST_DIR;
  assert.equal(locateFashionMnist(config, places)?.dir, project);
  assert.equal(locateFashionMnist(config, places)?.source, 'project');

  // An incomplete data/ is passed over.
  fs.rmSync(path.join(project, 't10k-labels-idx1-ubyte.gz'));
  assert.equal(locateFashionMnist(config, places)?.source, 'debian');

  fs.rmSync(path.join(debian, 'train-images-idx3-ubyte.gz'));
  assert.equal(locateFashionMnist(config, places), null);
});

test('an explicit directory that is missing or incomplete is an error, not a fallback', (t) => {
  const project = writeFixture(freshDir());
  const places = { env: {}, projectDir: project, debianDir: project };

  const missing = path.join(tmp, 'nowhere');
  assert.throws(
    () => locateFashionMnist(resolveDataConfig({ dataDir: missing }), places),
    (e) => assertConfigError(e, `Fashion-MNIST directory ${missing} (from dataDir) does not exist`, 'leave out dataDir'),
  );

  const partial = freshDir();
  fs.writeFileSync(path.join(partial, 'train-images-idx3-ubyte'), fixtureFiles().trainImages);
  assert.throws(
    () => locateFashionMnist(resolveDataConfig({ dataDir: partial }), places),
    (e) =>
      assertConfigError(
        e,
        `${partial} (from dataDir) is missing train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]`,
      ),
  );

  const notDir = path.join(partial, 'train-images-idx3-ubyte');
  assert.throws(() => locateFashionMnist(resolveDataConfig({ dataDir: notDir }), places), (e) => assertConfigError(e, 'is not a directory'));

  withEnv(t, missing);
  assert.throws(
    () => locateFashionMnist(resolveDataConfig(), { projectDir: project, debianDir: project }),
    (e) => assertConfigError(e, `${missing} (from FASHION_MNIST_DIR) does not exist`, 'unset FASHION_MNIST_DIR'),
  );
});

test('NAME.gz is preferred over raw NAME, and raw files alone are accepted', () => {
  const dir = writeFixture(writeFixture(freshDir(), { gzip: false }));
  const found = locateFashionMnist(resolveDataConfig({ dataDir: dir }), emptyPlaces());
  assert.equal(found?.files.trainImages, path.join(dir, 'train-images-idx3-ubyte.gz'));

  const raw = writeFixture(freshDir(), { gzip: false });
  const rawFound = locateFashionMnist(resolveDataConfig({ dataDir: raw }), emptyPlaces());
  assert.equal(rawFound?.files.testLabels, path.join(raw, 't10k-labels-idx1-ubyte'));
});

// ---------------------------------------------------------------------------------------------
// Loading

test('loadFashionMnist reads both splits and applies limits', async () => {
  const dir = writeFixture(freshDir(), { trainCount: 12, testCount: 5 });
  const data = await loadFashionMnist({ dataDir: dir }, emptyPlaces());
  assert.equal(data.source, 'option');
  assert.equal(data.dir, dir);
  assert.equal(data.train.count, 12);
  assert.equal(data.test.count, 5);
  assert.equal(data.train.height, 28);
  assert.equal(data.train.width, 28);
  assert.ok(data.train.images instanceof Uint8Array);
  assert.equal(data.train.images.length, 12 * 28 * 28);
  assert.deepEqual(Array.from(data.train.labels), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  assert.equal(data.train.images[3 * 784 + 5], (3 * 7 + 5) % 256);

  const limited = await loadFashionMnist({ dataDir: dir, trainLimit: 4, testLimit: 100 }, emptyPlaces());
  assert.equal(limited.train.count, 4);
  assert.equal(limited.train.images.length, 4 * 784);
  assert.deepEqual(Array.from(limited.train.labels), [0, 1, 2, 3]);
  assert.equal(limited.test.count, 5, 'a limit above the size uses everything');
});

test('image and label counts that differ name both files and counts', async () => {
  const dir = writeFixture(freshDir(), { trainCount: 6, trainLabels: new Uint8Array(5) });
  await assert.rejects(loadFashionMnist({ dataDir: dir }, emptyPlaces()), (e) =>
    assertConfigError(
      e,
      `${path.join(dir, 'train-images-idx3-ubyte.gz')}: holds 6 images but ${path.join(dir, 'train-labels-idx1-ubyte.gz')} holds 5 labels`,
    ),
  );
});

test('images that are not 28x28 are refused in one line naming the file, never squashed into a split', async () => {
  const dir = writeFixture(freshDir(), { side: 32 });
  await assert.rejects(loadFashionMnist({ dataDir: dir }, emptyPlaces()), (e) =>
    assertConfigError(e, `${path.join(dir, 'train-images-idx3-ubyte.gz')}: holds 32x32 images, but Fashion-MNIST's are 28x28`,
      'replace it with a good copy of the file'),
  );
});

test('a label outside 0..9 names the file, index and value', async () => {
  const dir = writeFixture(freshDir(), { trainCount: 4, trainLabels: Uint8Array.from([1, 2, 3, 10]) });
  await assert.rejects(loadFashionMnist({ dataDir: dir }, emptyPlaces()), (e) =>
    assertConfigError(e, `${path.join(dir, 'train-labels-idx1-ubyte.gz')}: label 10 at index 3 is outside 0..9`),
  );
});

test('swapped image and label files get a clear message', async () => {
  const dir = writeFixture(freshDir());
  const images = path.join(dir, 't10k-images-idx3-ubyte.gz');
  const labels = path.join(dir, 't10k-labels-idx1-ubyte.gz');
  const swap = path.join(dir, 'swap');
  fs.renameSync(images, swap);
  fs.renameSync(labels, images);
  fs.renameSync(swap, labels);
  await assert.rejects(loadFashionMnist({ dataDir: dir }, emptyPlaces()), (e) =>
    assertConfigError(e, `${images}: holds labels (IDX magic 2049) where images (magic 2051) belong`, 'look swapped'),
  );
});

test('a bad file inside a found directory is reported by path', async () => {
  const dir = writeFixture(freshDir());
  const file = path.join(dir, 'train-labels-idx1-ubyte.gz');
  fs.writeFileSync(file, '<html>Access denied</html>');
  await assert.rejects(loadFashionMnist({ dataDir: dir }, emptyPlaces()), (e) => assertConfigError(e, file, /HTML error page/));
});

test('nothing found and downloads off says where it looked and how to fix it', async () => {
  const places = emptyPlaces();
  await assert.rejects(loadFashionMnist({ download: false }, places), (e) =>
    assertConfigError(
      e,
      `Fashion-MNIST not found (looked in FASHION_MNIST_DIR (unset), ${places.projectDir}, ${places.debianDir} (Debian package))`,
      'downloading is turned off',
      '`apt-get install dataset-fashion-mnist`',
      'or pass dataDir DIR',
    ),
  );
});

// ---------------------------------------------------------------------------------------------
// Downloading

/** Serves the gzipped fixture files at /NAME.gz; anything else is a 404. */
async function fixtureServer(t: { after: (fn: () => Promise<void>) => void }) {
  const gz = fixtureFiles({ trainCount: 20, testCount: 8 });
  const bodies = new Map<string, Buffer>();
  const checksums = {} as Record<FashionMnistFile, string>;
  for (const role of Object.keys(gz) as FashionMnistFile[]) {
    const body = zlib.gzipSync(gz[role]);
    bodies.set(`/${FASHION_MNIST_FILES[role]}.gz`, body);
    checksums[role] = crypto.createHash('md5').update(body).digest('hex');
  }
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = bodies.get(req.url ?? '');
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/html' }).end('<html>not here</html>');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { baseUrl, checksums, requests };
}

test('downloadFashionMnist fetches the missing files, checks them and leaves no temp files', async (t) => {
  const { baseUrl, checksums, requests } = await fixtureServer(t);
  const dir = path.join(freshDir(), 'data'); // created by the download
  const config = resolveDataConfig({ baseUrl, checksums });

  await downloadFashionMnist(dir, config, emptyPlaces());
  assert.deepEqual(fs.readdirSync(dir).sort(), Object.values(FASHION_MNIST_FILES).map((n) => `${n}.gz`).sort());
  assert.equal(requests.length, 4);

  // Files already there are not fetched again.
  await downloadFashionMnist(dir, config, emptyPlaces());
  assert.equal(requests.length, 4);

  const data = await loadFashionMnist({ dataDir: dir }, emptyPlaces());
  assert.equal(data.train.count, 20);
  assert.equal(data.test.count, 8);
});

test('loadFashionMnist downloads into data/ when the files are found nowhere', async (t) => {
  const { baseUrl, checksums } = await fixtureServer(t);
  const places = { ...emptyPlaces(), projectDir: path.join(freshDir(), 'data') };
  const data = await loadFashionMnist({ baseUrl, checksums, trainLimit: 3 }, places);
  assert.equal(data.source, 'download');
  assert.equal(data.dir, places.projectDir);
  assert.equal(data.files.trainImages, path.join(places.projectDir, 'train-images-idx3-ubyte.gz'));
  assert.equal(data.train.count, 3);
});

test('a checksum mismatch names the file and both md5s and leaves nothing behind', async (t) => {
  const { baseUrl, checksums } = await fixtureServer(t);
  const dir = freshDir();
  const wrong = '0123456789abcdef0123456789abcdef';
  const config = resolveDataConfig({ baseUrl, checksums: { ...checksums, trainLabels: wrong } });

  await assert.rejects(downloadFashionMnist(dir, config, emptyPlaces()), (e) =>
    assertConfigError(
      e,
      `train-labels-idx1-ubyte.gz downloaded from ${baseUrl}train-labels-idx1-ubyte.gz has md5 ${checksums.trainLabels}, expected ${wrong}`,
      'it was not saved',
    ),
  );
  const left = fs.readdirSync(dir);
  assert.ok(!left.some((f) => f.startsWith('train-labels-idx1-ubyte')), `left behind: ${left.join(', ')}`);
  assert.ok(!left.some((f) => f.includes('.part')), `left behind: ${left.join(', ')}`);
  assert.deepEqual(left, ['train-images-idx3-ubyte.gz'], 'files before the bad one are kept');
});

test('an HTTP error is a download failure with the status', async (t) => {
  const { baseUrl, checksums } = await fixtureServer(t);
  const dir = freshDir();
  const config = resolveDataConfig({ baseUrl: `${baseUrl}missing/`, checksums });
  await assert.rejects(downloadFashionMnist(dir, config, emptyPlaces()), (e) =>
    assertConfigError(e, `the download from ${baseUrl}missing/train-images-idx3-ubyte.gz failed (HTTP 404 Not Found)`),
  );
  assert.deepEqual(fs.readdirSync(dir), []);
});

/** A local port nothing listens on (fetch refuses port 1 itself as a "bad port"). */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('offline: one clear message with where it looked, what failed and how to fix it', async () => {
  const places = emptyPlaces();
  const dir = freshDir();
  const baseUrl = `http://127.0.0.1:${await closedPort()}/`;
  await assert.rejects(downloadFashionMnist(dir, resolveDataConfig({ baseUrl }), places), (e) =>
    assertConfigError(
      e,
      `Fashion-MNIST not found (looked in FASHION_MNIST_DIR (unset), ${places.projectDir}, ${places.debianDir} (Debian package))`,
      new RegExp(`and the download from ${escape(baseUrl)}train-images-idx3-ubyte\\.gz failed \\(connect ECONNREFUSED [^)]*\\)`),
      `install it with \`apt-get install dataset-fashion-mnist\`, or download the four .gz files from ${baseUrl}`,
      'or pass dataDir DIR',
    ),
  );
  assert.deepEqual(fs.readdirSync(dir), []);
});

// ---------------------------------------------------------------------------------------------
// Batching

/** A split of `count` 28x28 images whose first pixel is the example's index. */
function indexedSplit(count: number): FashionMnistSplit {
  const images = new Uint8Array(count * 784);
  for (let i = 0; i < count; i++) {
    images[i * 784] = i;
    images[i * 784 + 1] = 255;
  }
  return { images, labels: Uint8Array.from({ length: count }, (_, i) => i % 10), count, height: 28, width: 28 };
}

/** The example indices of one epoch, batch by batch, disposing every tensor. */
function epochOrder(split: FashionMnistSplit, seed: number, epoch: number, shuffle = true): number[] {
  const order: number[] = [];
  for (const { xs, ys } of batches(split, { batchSize: 16, shuffle, seed, epoch })) {
    const first = tf.slice(xs, [0, 0, 0, 0], [-1, 1, 1, 1]);
    order.push(...Array.from(first.dataSync(), (v) => Math.round(v * 255)));
    first.dispose();
    xs.dispose();
    ys.dispose();
  }
  return order;
}

test('batches: NHWC shapes, [0, 1] values, int32 labels and a last partial batch', () => {
  const split = indexedSplit(50);
  const before = tf.memory().numTensors;
  const shapes: number[][] = [];
  for (const { xs, ys } of batches(split, { batchSize: 16, shuffle: false, seed: 0, epoch: 0 })) {
    shapes.push(xs.shape);
    assert.equal(xs.dtype, 'float32');
    assert.equal(ys.dtype, 'int32');
    assert.equal(ys.shape[0], xs.shape[0]);
    const values = xs.dataSync();
    assert.ok(values.every((v) => v >= 0 && v <= 1));
    assert.equal(values[1], 1, 'pixel 255 becomes 1');
    xs.dispose();
    ys.dispose();
  }
  assert.deepEqual(shapes, [[16, 28, 28, 1], [16, 28, 28, 1], [16, 28, 28, 1], [2, 28, 28, 1]]);
  assert.equal(shapes.length, numBatches(50, 16));
  assert.equal(tf.memory().numTensors, before);
});

test('batches resize each batch to [b, r, r, 1] without leaking tensors', () => {
  const split = indexedSplit(10);
  const before = tf.memory().numTensors;
  const shapes: number[][] = [];
  for (const { xs, ys } of batches(split, { batchSize: 4, resize: 56, shuffle: true, seed: 3, epoch: 1 })) {
    shapes.push(xs.shape);
    const values = xs.dataSync();
    assert.ok(values.every((v) => v >= 0 && v <= 1));
    assert.ok(Math.max(...values) > 0.5, 'resized images keep their content');
    xs.dispose();
    ys.dispose();
  }
  assert.deepEqual(shapes, [[4, 56, 56, 1], [4, 56, 56, 1], [2, 56, 56, 1]]);
  assert.equal(tf.memory().numTensors, before);
});

test('batches: labels follow their images', () => {
  const split = indexedSplit(30);
  for (const { xs, ys } of batches(split, { batchSize: 7, shuffle: true, seed: 1, epoch: 0 })) {
    const index = tf.tidy(() => tf.reshape(tf.round(tf.mul(tf.slice(xs, [0, 0, 0, 0], [-1, 1, 1, 1]), 255)), [-1]));
    const expected = Array.from(index.dataSync(), (i) => i % 10);
    assert.deepEqual(Array.from(ys.dataSync()), expected);
    tf.dispose([index, xs, ys]);
  }
});

test('batches: seeded order, a new order each epoch, every example once', () => {
  const split = indexedSplit(100);
  const epoch0 = epochOrder(split, 42, 0);
  assert.deepEqual(epochOrder(split, 42, 0), epoch0, 'same seed and epoch give the same order');
  assert.notDeepEqual(epochOrder(split, 42, 1), epoch0, 'another epoch gives another order');
  assert.notDeepEqual(epochOrder(split, 7, 0), epoch0, 'another seed gives another order');
  const identity = Array.from({ length: 100 }, (_, i) => i);
  assert.notDeepEqual(epoch0, identity);
  for (const order of [epoch0, epochOrder(split, 42, 1)]) {
    assert.deepEqual([...order].sort((a, b) => a - b), identity, 'each example exactly once');
  }
  assert.deepEqual(epochOrder(split, 42, 0, false), identity, 'no shuffle keeps file order');
});

test('batches rejects bad options before yielding anything', () => {
  const split = indexedSplit(4);
  assert.throws(() => batches(split, { batchSize: 0, shuffle: false, seed: 0, epoch: 0 }), (e) => assertConfigError(e, 'batchSize must be an integer >= 1'));
  assert.throws(() => batches(split, { batchSize: 2, resize: -1, shuffle: false, seed: 0, epoch: 0 }), (e) => assertConfigError(e, 'resize'));
  assert.throws(() => batches(split, { batchSize: 2, shuffle: false, seed: 0.5, epoch: 0 }), (e) => assertConfigError(e, 'seed must be an integer'));
  assert.throws(() => batches(split, { batchSize: 2, shuffle: false, seed: 0, epoch: -1 }), (e) => assertConfigError(e, 'epoch must be an integer >= 0'));
  assert.equal(numBatches(60000, 128), 469);
  assert.equal(numBatches(256, 128), 2);
});

// ---------------------------------------------------------------------------------------------
// The real files, when the Debian package is installed

// Skipped without the package, unless NIN_REQUIRE_DATA=1 (CI installs it): there a failing test
// takes its place (test/optional.ts).
test('the Debian copy of Fashion-MNIST loads', { skip: skipUnless(['debian-data'], undefined, 'the Debian copy of Fashion-MNIST test') }, async () => {
  const dir = DEBIAN_FASHION_MNIST_DIR;
  assert.deepEqual(readIdxFile(path.join(dir, 'train-labels-idx1-ubyte.gz')).dims, [60000]);
  assert.deepEqual(readIdxFile(path.join(dir, 't10k-labels-idx1-ubyte.gz')).dims, [10000]);
  assert.deepEqual(readIdxFile(path.join(dir, 't10k-images-idx3-ubyte.gz')).dims, [10000, 28, 28]);

  const places = { env: {}, projectDir: path.join(tmp, 'no-project-data'), debianDir: dir };
  const data = await loadFashionMnist({ trainLimit: 256, testLimit: 64, download: false }, places);
  assert.equal(data.source, 'debian');
  assert.equal(data.train.count, 256);
  assert.equal(data.test.count, 64);
  assert.ok(data.train.images instanceof Uint8Array);
  assert.equal(data.train.images.length, 256 * 28 * 28);
  assert.deepEqual(Array.from(data.train.labels.subarray(0, 10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
  assert.deepEqual(Array.from(data.test.labels.subarray(0, 10)), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);

  const [first] = batches(data.test, { batchSize: 32, shuffle: false, seed: 0, epoch: 0 });
  assert.deepEqual(first.xs.shape, [32, 28, 28, 1]);
  tf.dispose([first.xs, first.ys]);
});
