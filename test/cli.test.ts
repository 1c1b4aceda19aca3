/**
 * The `nin` command line, run in-process through `main(argv, io)` with captured output:
 * what goes to stdout and stderr, exit codes, one-line errors, and `--json`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { main } from '../lib/cli';

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs `nin ...args` and captures what it writes. */
async function nin(...args: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const code = await main(['node', 'nin', ...args], {
    out: (t) => { out += t; },
    err: (t) => { err += t; },
    isTTY: false,
  });
  return { code, out, err };
}

/** Asserts stderr is exactly one line (newline-terminated) and returns it. */
function oneLine(err: string): string {
  assert.ok(err.endsWith('\n'), `stderr should end with a newline: ${JSON.stringify(err)}`);
  const lines = err.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, `stderr should be one line, got:\n${err}`);
  return lines[0];
}

/** stdout parsed as exactly one JSON object (JSON.parse rejects anything around it). */
function oneJsonObject(out: string): Record<string, unknown> {
  let value: unknown;
  assert.doesNotThrow(() => { value = JSON.parse(out); }, `stdout is not one JSON value:\n${out.slice(0, 500)}`);
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), 'a JSON object');
  return value as Record<string, unknown>;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-cli-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** An IDX file of unsigned bytes: 00 00 08 ndims, big-endian dims, then the data. */
function idxBytes(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

/** A small Fashion-MNIST look-alike: label k is a bright band at rows 2k..2k+2. */
function writeFixture(dir: string, trainCount: number, testCount: number): string {
  fs.mkdirSync(dir, { recursive: true });
  const split = (n: number, offset: number) => {
    const images = new Uint8Array(n * 784);
    const labels = Uint8Array.from({ length: n }, (_, i) => (i * 7 + offset) % 10);
    labels.forEach((k, i) => images.fill(255, i * 784 + 2 * k * 28, i * 784 + (2 * k + 3) * 28));
    return { images: idxBytes([n, 28, 28], images), labels: idxBytes([n], labels) };
  };
  const train = split(trainCount, 0);
  const testSplit = split(testCount, 3);
  fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), zlib.gzipSync(train.images));
  fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), zlib.gzipSync(train.labels));
  fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), testSplit.images);
  fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), testSplit.labels);
  return dir;
}

const fixtureDir = writeFixture(path.join(tmp, 'fashion'), 32, 16);
/** Points at nothing, so a check that lets a bad option through fails fast instead of training on real data. */
const missingDir = path.join(tmp, 'no-such-dir');

const CHAPTER_SHAPES = [
  '(1, 96, 54, 54)', '(1, 96, 26, 26)', '(1, 256, 26, 26)', '(1, 256, 12, 12)', '(1, 384, 12, 12)',
  '(1, 384, 5, 5)', '(1, 10, 5, 5)', '(1, 10, 1, 1)', '(1, 10)',
];

// ---------------------------------------------------------------------------------------------
// nin shapes

test('shapes --size 224 prints the chapter\'s table', async () => {
  const { code, out, err } = await nin('shapes', '--size', '224');
  assert.equal(code, 0, err);
  for (const shape of CHAPTER_SHAPES) assert.ok(out.includes(shape), `missing ${shape} in:\n${out}`);
  assert.equal(out.split('(1, 384, 5, 5)').length - 1, 2, 'pool3 and dropout both (1, 384, 5, 5)');
  assert.ok(out.includes('1,992,166'));
  assert.match(out, /NHWC|\(N, H, W, C\)/, 'says tfjs stores NHWC');
  assert.match(out, /^block1\s+\(1, 96, 54, 54\)\s+30,336$/m);
  assert.equal(err, '');
});

test('shapes --json prints one JSON object and nothing else', async () => {
  const { code, out, err } = await nin('shapes', '--json');
  assert.equal(code, 0, err);
  const result = oneJsonObject(out);
  assert.equal(result.totalParams, 1992166);
  const layers = result.layers as { name: string; shape: number[]; params: number }[];
  assert.ok(Array.isArray(layers));
  assert.deepEqual(layers.map((l) => l.name), [
    'block1', 'pool1', 'block2', 'pool2', 'block3', 'pool3', 'dropout', 'block4', 'global_avg_pool', 'flatten',
  ]);
  assert.deepEqual(layers.map((l) => `(${l.shape.join(', ')})`), [
    '(1, 96, 54, 54)', '(1, 96, 26, 26)', '(1, 256, 26, 26)', '(1, 256, 12, 12)', '(1, 384, 12, 12)',
    '(1, 384, 5, 5)', '(1, 384, 5, 5)', '(1, 10, 5, 5)', '(1, 10, 1, 1)', '(1, 10)',
  ]);
  assert.deepEqual(layers.filter((l) => l.params > 0).map((l) => l.params), [30336, 746240, 1180800, 34790]);
});

test('shapes --size 60: one line on stderr naming the minimum, no stack trace', async () => {
  const { code, out, err } = await nin('shapes', '--size', '60');
  assert.equal(code, 1);
  assert.equal(out, '');
  const line = oneLine(err);
  assert.match(line, /^nin: /);
  assert.match(line, /67/);
  assert.match(line, /60/);
  assert.doesNotMatch(err, /\bat .*\.js:\d+/, 'no stack trace');
});

test('--debug adds the stack trace to an error', async () => {
  for (const args of [['--debug', 'shapes', '--size', '60'], ['shapes', '--size', '60', '--debug']]) {
    const { code, out, err } = await nin(...args);
    assert.equal(code, 1, args.join(' '));
    assert.equal(out, '');
    const lines = err.trimEnd().split('\n');
    assert.match(lines[0], /^nin: .*67/);
    assert.ok(lines.length > 2, `expected a stack trace after the message:\n${err}`);
    assert.match(err, /\n\s+at .*model\.js:\d+/, 'the trace reaches into lib/model');
  }
});

// ---------------------------------------------------------------------------------------------
// nin train: bad options

const badTrainOptions: { args: string[]; names: RegExp[] }[] = [
  { args: ['--lr', '-1'], names: [/-1/, /\blr\b/] },
  { args: ['--lr', 'abc'], names: [/abc/, /--lr/] },
  { args: ['--lr', '0'], names: [/\blr\b.* 0\b/] },
  { args: ['--batch-size', '0'], names: [/batch.?size/i, /\b0\b/] },
  { args: ['--epochs', '0'], names: [/epochs/i, /\b0\b/] },
  { args: ['--epochs', '1.5'], names: [/1\.5/, /--epochs/] },
  { args: ['--resize', '50'], names: [/50/, /67/] },
  { args: ['--backend', 'nope'], names: [/nope/, /wasm/] },
  { args: ['--bogus'], names: [/--bogus/] },
];

for (const { args, names } of badTrainOptions) {
  test(`train ${args.join(' ')}: a non-zero exit and one line naming it`, async () => {
    const { code, out, err } = await nin('train', ...args, '--data-dir', missingDir);
    assert.notEqual(code, 0);
    assert.equal(out, '', 'nothing on stdout');
    const line = oneLine(err);
    for (const name of names) assert.match(line, name);
    assert.doesNotMatch(line, /no-such-dir/, 'rejected before looking for data');
  });
}

// ---------------------------------------------------------------------------------------------
// nin data

test('data --data-dir /nonexistent/dir: exit 1, one line naming the directory', async () => {
  const { code, out, err } = await nin('data', '--data-dir', '/nonexistent/dir');
  assert.equal(code, 1);
  assert.equal(out, '');
  const line = oneLine(err);
  assert.match(line, /^nin: /);
  assert.ok(line.includes('/nonexistent/dir'), line);
  assert.match(line, /does not exist/);
});

test('data --json on fixture files: one JSON object with the counts', async () => {
  const { code, out, err } = await nin('data', '--json', '--data-dir', fixtureDir);
  assert.equal(code, 0, err);
  const result = oneJsonObject(out) as { train: { count: number; height: number }; test: { count: number }; dir: string; source: string };
  assert.equal(result.train.count, 32);
  assert.equal(result.test.count, 16);
  assert.equal(result.train.height, 28);
  assert.equal(result.dir, fixtureDir);
  assert.equal(result.source, 'option');
});

// ---------------------------------------------------------------------------------------------
// nin train: a tiny real run

const tinyRun = ['--data-dir', fixtureDir, '--resize', '67', '--batch-size', '8', '--backend', 'wasm', '--seed', '1'];

test('train --json: one JSON object with config, history and final metrics', async () => {
  const { code, out, err } = await nin('train', '--json', '--epochs', '2', ...tinyRun);
  assert.equal(code, 0, err);
  const result = oneJsonObject(out) as {
    config: { train: { numEpochs: number; batchSize: number; resize: number; lr: number; seed: number } };
    history: { epoch: number; trainLoss: number; trainAcc: number; testAcc: number; examplesPerSec: number }[];
    final: Record<string, number>;
  };
  assert.equal(result.config.train.numEpochs, 2);
  assert.equal(result.config.train.batchSize, 8);
  assert.equal(result.config.train.resize, 67);
  assert.equal(result.config.train.seed, 1);
  assert.equal(result.config.train.lr, 0.1, 'the chapter\'s default learning rate');
  assert.equal(result.history.length, 2);
  assert.deepEqual(result.history.map((e) => e.epoch), [1, 2]);
  assert.deepEqual(Object.keys(result.final).sort(), ['examplesPerSec', 'loss', 'testAcc', 'trainAcc']);
  for (const [key, value] of Object.entries(result.final)) assert.ok(Number.isFinite(value), `final.${key} = ${value}`);
  const last = result.history[1];
  assert.equal(result.final.loss, last.trainLoss);
  assert.equal(result.final.trainAcc, last.trainAcc);
  assert.equal(result.final.testAcc, last.testAcc);
  assert.ok(result.final.examplesPerSec > 0);
  assert.ok(result.final.testAcc >= 0 && result.final.testAcc <= 1);
});

test("train without --json prints the chapter's summary lines", async () => {
  const { code, out, err } = await nin('train', '--epochs', '1', ...tinyRun);
  assert.equal(code, 0, err);
  assert.match(out, /^loss [\d.]+, train acc [\d.]+, test acc [\d.]+$/m);
  assert.match(out, /^[\d.]+ examples\/sec on wasm$/m);
  assert.match(out, /backend: wasm/);
  assert.match(out, /32 training \/ 16 test examples/);
  assert.throws(() => JSON.parse(out), 'plain text, not JSON');
});
