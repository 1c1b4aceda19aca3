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
import { spawn, spawnSync } from 'node:child_process';
import { nin, oneLine } from './harness';
import { packageRoot } from '../../lib/storage/paths';
import { idxBytes } from '../fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { nin as buildNin } from '../../lib/core/model';
import { saveLayersModel } from '../../lib/storage/layersFolder';

/** stdout parsed as exactly one JSON object (JSON.parse rejects anything around it). */
function oneJsonObject(out: string): Record<string, unknown> {
  let value: unknown;
  assert.doesNotThrow(() => { value = JSON.parse(out); }, `stdout is not one JSON value:\n${out.slice(0, 500)}`);
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), 'a JSON object');
  return value as Record<string, unknown>;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-cli-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

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

test('a misspelt NIN_NATIVE_CONV: exit 1, one line naming the value and the choices', () => {
  // A child process: the variable is read once, when the native addon is first loaded.
  const r = spawnSync(process.execPath, [path.join(packageRoot(), 'bin', 'nin.js'), 'bench', '--resize', '67', '--batch-size', '2', '--steps', '1'],
    { encoding: 'utf8', env: { ...process.env, NIN_NATIVE_CONV: 'openblas', NIN_NATIVE: '1' }, timeout: 60_000 });
  assert.equal(r.status, 1);
  assert.equal(oneLine(r.stderr), 'nin: NIN_NATIVE_CONV must be one of blas, dnnl, dnnl-direct, got "openblas"');
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
  { args: ['--momentum', '1'], names: [/--momentum must be a number in \[0, 1\), got 1/] },
  { args: ['--lr-schedule', 'step'], names: [/--lr-schedule must be one of constant, cosine, linear, got "step"/] },
  { args: ['--optimizer', 'rmsprop'], names: [/--optimizer must be one of sgd, adam, got "rmsprop"/] },
  { args: ['--optimizer', 'adam', '--momentum', '0.9'], names: [/--momentum must be 0 with the adam optimizer/, /got 0\.9/] },
  { args: ['--backend', 'nope'], names: [/nope/, /wasm/] },
  { args: ['--bogus'], names: [/--bogus/] },
  { args: ['--resume'], names: [/--resume needs --checkpoint-dir/] },
  { args: ['--resume', '--checkpoint-dir', missingDir], names: [/checkpoint directory .* does not exist/, /without --resume/] },
];

for (const { args, names } of badTrainOptions) {
  test(`train ${args.join(' ')}: a non-zero exit and one line naming it`, async () => {
    const { code, out, err } = await nin('train', ...args, '--data-dir', missingDir);
    assert.notEqual(code, 0);
    assert.equal(out, '', 'nothing on stdout');
    const line = oneLine(err);
    for (const name of names) assert.match(line, name);
    if (!args.includes(missingDir)) assert.doesNotMatch(line, /no-such-dir/, 'rejected before looking for data');
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

test('train --optimizer adam: the run uses Adam, says so, and its checkpoint keeps the averages', async () => {
  const dir = checkpointDir();
  const { code, out, err } = await nin('train', '--epochs', '1', '--optimizer', 'adam', '--lr', '0.001',
    '--checkpoint-dir', dir, ...tinyRun);
  assert.equal(code, 0, err);
  assert.match(out, /^training NiN: 1 epoch at 67 px, batch 8, adam lr 0\.001$/m);
  const state = JSON.parse(fs.readFileSync(path.join(dir, 'epoch-0001', 'state.json'), 'utf8'));
  assert.equal(state.train.optimizer, 'adam');
  assert.equal(state.optimizer.name, 'adam');
  assert.ok(fs.statSync(path.join(dir, 'epoch-0001', 'optimizer.bin')).size > 0);
  const other = await nin('train', '--resume', '--checkpoint-dir', dir, '--epochs', '2', '--optimizer', 'sgd', ...tinyRun);
  assert.equal(other.code, 1);
  assert.match(oneLine(other.err), /--optimizer sgd differs from the checkpoint's adam/);
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

// ---------------------------------------------------------------------------------------------
// nin train --checkpoint-dir / --resume, and nin eval

interface TrainJson {
  history: { epoch: number; trainLoss: number; trainAcc: number; testAcc: number; examplesPerSec: number; seconds: number }[];
  final: { loss: number; trainAcc: number; testAcc: number };
  checkpoint?: { dir: string; resumedFrom: { epochsCompleted: number; steps: number } | null };
}

/** Loss and accuracies of each epoch: what an interrupted and resumed run must reproduce bit for bit. */
const metrics = (r: TrainJson) => r.history.map(({ epoch, trainLoss, trainAcc, testAcc }) => ({ epoch, trainLoss, trainAcc, testAcc }));
const latestOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')) as
  { checkpoint: string; epochsCompleted: number; steps: number };
const weightsOf = (dir: string) => fs.readFileSync(path.join(dir, latestOf(dir).checkpoint, 'weights.bin'));
let checkpointCount = 0;
const checkpointDir = () => path.join(tmp, `checkpoints${++checkpointCount}`);

const tinyCheckpointed = ['--data-dir', fixtureDir, '--resize', '67', '--batch-size', '8', '--backend', 'wasm', '--seed', '1', '--init', 'he'];

test('train 1 epoch with --checkpoint-dir, then --resume to 2: the same metrics, bit for bit, as 2 epochs straight', async () => {
  const straightDir = checkpointDir();
  const straight = await nin('train', '--json', '--epochs', '2', ...tinyCheckpointed, '--checkpoint-dir', straightDir);
  assert.equal(straight.code, 0, straight.err);
  const dir = checkpointDir();
  const first = await nin('train', '--json', '--epochs', '1', ...tinyCheckpointed, '--checkpoint-dir', dir);
  assert.equal(first.code, 0, first.err);
  assert.deepEqual(latestOf(dir), { ...latestOf(dir), checkpoint: 'epoch-0001', epochsCompleted: 1, steps: 0 });
  // The checkpoint supplies --resize, --batch-size and --seed; --epochs may grow.
  const second = await nin('train', '--json', '--resume', '--checkpoint-dir', dir, '--epochs', '2',
    '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.equal(second.code, 0, second.err);
  const a = oneJsonObject(straight.out) as unknown as TrainJson;
  const b = oneJsonObject(second.out) as unknown as TrainJson;
  assert.deepEqual(b.checkpoint?.resumedFrom, { epochsCompleted: 1, steps: 0 });
  assert.deepEqual(metrics(b), metrics(a), 'losses and accuracies of both epochs');
  assert.deepEqual(b.final, { ...b.final, loss: a.final.loss, trainAcc: a.final.trainAcc, testAcc: a.final.testAcc });
  assert.ok(weightsOf(dir).equals(weightsOf(straightDir)), 'the final weights, byte for byte');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['epoch-0002', 'latest.json'], 'older checkpoints are removed');

  // What a resume will not do: start over an existing checkpoint, or change the run's shape.
  const again = await nin('train', ...tinyCheckpointed, '--checkpoint-dir', dir);
  assert.equal(again.code, 1);
  assert.match(oneLine(again.err), /already holds a checkpoint; add --resume to continue it/);
  const other = await nin('train', '--resume', '--checkpoint-dir', dir, '--resize', '96', '--epochs', '3', '--data-dir', fixtureDir);
  assert.equal(other.code, 1);
  assert.match(oneLine(other.err), /--resize 96 differs from the checkpoint's 67/);
  const bias = await nin('train', '--resume', '--checkpoint-dir', dir, '--class-block-bias', '0.1', '--epochs', '3', '--data-dir', fixtureDir);
  assert.equal(bias.code, 1);
  assert.match(oneLine(bias.err), /--class-block-bias 0\.1 differs from the checkpoint's 0/);
  const done = await nin('train', '--resume', '--checkpoint-dir', dir, '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.equal(done.code, 1);
  assert.match(oneLine(done.err), /already completed 2 epochs; pass --epochs N with N > 2/);
  const fewer = await nin('train', '--resume', '--checkpoint-dir', dir, '--epochs', '3', '--train-limit', '20',
    '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.equal(fewer.code, 1);
  assert.match(oneLine(fewer.err), /trained on 32 training \/ 16 test examples, this data has 20 \/ 16/);
});

test('a diverging resume stops at once, naming epoch and step, and keeps the last good checkpoint', async () => {
  const dir = checkpointDir();
  assert.equal((await nin('train', '--epochs', '1', ...tinyCheckpointed, '--checkpoint-dir', dir)).code, 0);
  const before = weightsOf(dir);
  const { code, out, err } = await nin('train', '--resume', '--checkpoint-dir', dir, '--epochs', '2', '--lr', '1e6',
    '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.equal(code, 1);
  assert.doesNotMatch(out, /^loss /m, 'no summary');
  const line = oneLine(err.split('\n').filter((l) => l.startsWith('nin: ')).join('\n') + '\n');
  assert.match(line, /training diverged at epoch 2, step \d of 4: (the loss is (NaN|-?Infinity)|the gradients hold NaN or infinite values \(the update was not applied\)); try a smaller learning rate than 1000000/);
  assert.ok(line.includes(`the last good checkpoint (epoch 1 complete) stays in ${dir}; ` +
    `resume from it with \`nin train --resume --checkpoint-dir ${dir} --lr 100000\``), line);
  assert.equal(latestOf(dir).checkpoint, 'epoch-0001');
  assert.ok(weightsOf(dir).equals(before));
});

test('--lr 1e20 from scratch stops in the first steps with one line, and saves nothing', async () => {
  const dir = checkpointDir();
  const { code, out, err } = await nin('train', '--epochs', '3', ...tinyCheckpointed, '--lr', '1e20', '--checkpoint-dir', dir);
  assert.equal(code, 1);
  assert.doesNotMatch(out, /^loss /m, 'no summary');
  const line = oneLine(err.split('\n').filter((l) => l.startsWith('nin: ')).join('\n') + '\n');
  assert.match(line, /^nin: (training diverged|the network died) at epoch 1, step \d of 4: /);
  assert.match(line, /no checkpoint was saved \(no epoch completed\)/);
  assert.doesNotMatch(line, /internal error/);
  assert.ok(!fs.existsSync(path.join(dir, 'latest.json')), 'no checkpoint');
});

test("a dead run (the chapter's recipe, Glorot init, seed 1 on the band fixture) stops with one line naming the step", async () => {
  const dir = checkpointDir();
  const bands = writeFixture(path.join(tmp, 'fashion-dead'), 128, 32);
  const { code, err } = await nin('train', '--data-dir', bands, '--resize', '67', '--batch-size', '16', '--epochs', '3',
    '--backend', 'wasm', '--seed', '1', '--checkpoint-dir', dir);
  assert.equal(code, 1, err);
  // Warnings (classes gone silent before it died) may precede it; the error itself is one line.
  const line = oneLine(err.split('\n').filter((l) => l.startsWith('nin: ') && !l.startsWith('nin: warning: ')).join('\n') + '\n');
  assert.match(line, /^nin: the network died at epoch \d, step \d of 8: for \d+ steps? it has given every image the same scores/);
  assert.match(line, /warm-up/);
});

test('eval of a dead model warns on stderr and in --json', async () => {
  const folder = path.join(tmp, 'dead-model');
  const model = buildNin({ inputSize: 67, seed: 3 });
  for (const w of model.weights.filter((x) => /block4_conv0\/bias/.test(x.originalName))) {
    const t = tf.fill(w.shape as number[], -100);
    w.write(t);
    t.dispose();
  }
  await saveLayersModel(model, folder);
  model.dispose();
  const r = await nin('eval', '--model', folder, '--data-dir', fixtureDir, '--backend', 'wasm', '--json');
  assert.equal(r.code, 0, r.err);
  assert.match(oneLine(r.err), /^nin: warning: this model gives every image the same scores/);
  assert.match(String(oneJsonObject(r.out).warning), /dead network/);
});

test('eval --json on a checkpoint: accuracy as training reported it, per-class names, confusion rows summing to class counts', async () => {
  const dir = checkpointDir();
  const trained = await nin('train', '--json', '--epochs', '1', ...tinyCheckpointed, '--checkpoint-dir', dir);
  assert.equal(trained.code, 0, trained.err);
  const testAcc = (oneJsonObject(trained.out) as unknown as TrainJson).final.testAcc;
  const { code, out, err } = await nin('eval', '--model', dir, '--data-dir', fixtureDir, '--backend', 'wasm', '--batch-size', '5', '--json');
  assert.equal(code, 0, err);
  const r = oneJsonObject(out) as {
    accuracy: number; count: number; correct: number; model: { inputSize: number; checkpoint: { epochsCompleted: number } };
    perClass: { label: number; name: string; count: number; correct: number; accuracy: number | null }[];
    confusionMatrix: number[][];
  };
  assert.equal(r.accuracy, testAcc, 'what evaluateAccuracy gave at the end of the epoch');
  assert.equal(r.count, 16);
  assert.equal(r.model.inputSize, 67);
  assert.equal(r.model.checkpoint.epochsCompleted, 1);
  assert.deepEqual(r.perClass.map((c) => c.name), ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt',
    'sneaker', 'bag', 'ankle boot']);
  const labels = Array.from({ length: 16 }, (_, i) => (i * 7 + 3) % 10); // the fixture's test labels
  assert.equal(r.confusionMatrix.length, 10);
  r.confusionMatrix.forEach((row, k) => {
    assert.equal(row.length, 10);
    assert.equal(row.reduce((a, b) => a + b, 0), labels.filter((l) => l === k).length, `row ${k}`);
    assert.equal(r.perClass[k].correct, row[k]);
  });
  assert.equal(r.correct, r.confusionMatrix.reduce((s, row, k) => s + row[k], 0));

  const text = await nin('eval', '--model', dir, '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, new RegExp(`^accuracy ${testAcc.toFixed(3)} \\(\\d+ of 16\\)$`, 'm'));
  assert.match(text.out, /^ankle boot +(—|[\d.]+) +\d+ +\d+$/m);
  assert.match(text.out, /confusion matrix \(rows: true class, columns: predicted class\)/);
});

test('eval on a missing or garbage model directory: one line, exit 1', async () => {
  const missing = await nin('eval', '--model', missingDir, '--data-dir', fixtureDir);
  assert.equal(missing.code, 1);
  assert.match(oneLine(missing.err), /^nin: model directory .*no-such-dir does not exist/);
  const garbage = path.join(tmp, 'garbage-model');
  fs.mkdirSync(garbage, { recursive: true });
  fs.writeFileSync(path.join(garbage, 'model.json'), '{"modelTopology": ');
  const bad = await nin('eval', '--model', garbage, '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.equal(bad.code, 1);
  assert.match(oneLine(bad.err), /garbage-model\/model\.json is not valid JSON/);
  assert.doesNotMatch(bad.err, /internal error/);
  const empty = path.join(tmp, 'empty-model');
  fs.mkdirSync(empty, { recursive: true });
  const none = await nin('eval', '--model', empty, '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.match(oneLine(none.err), /holds neither model\.json nor a checkpoint/);
});

// ---------------------------------------------------------------------------------------------
// Real processes killed mid-epoch: SIGKILL, and Ctrl-C (SIGINT)

/** 128 training examples: 8 steps of 16 per epoch, about a second each at 67 px. */
const killFixture = writeFixture(path.join(tmp, 'fashion-kill'), 128, 32);
const longRun = ['--data-dir', killFixture, '--resize', '67', '--batch-size', '16', '--epochs', '3', '--backend', 'wasm',
  '--seed', '1', '--init', 'he', '--json'];

let reference: Promise<{ result: TrainJson; dir: string }> | undefined;
/** The uninterrupted run the interrupted ones are compared with (computed once). */
function uninterrupted() {
  reference ??= (async () => {
    const dir = checkpointDir();
    const r = await nin('train', ...longRun, '--checkpoint-dir', dir);
    assert.equal(r.code, 0, r.err);
    return { result: oneJsonObject(r.out) as unknown as TrainJson, dir };
  })();
  return reference;
}

/**
 * Runs `node bin/nin.js args` in a child process and sends it `signal` as soon as its stderr
 * matches `when`. Resolves with how it ended and what it wrote.
 */
function runAndSignal(args: string[], when: RegExp, signal: NodeJS.Signals):
Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'nin.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sent = false;
    const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => {
      err += d;
      if (!sent && when.test(err)) {
        sent = true;
        child.kill(signal);
      }
    });
    child.on('error', reject);
    child.on('close', (code, sig) => {
      clearTimeout(guard);
      resolve({ code, signal: sig, out, err });
    });
  });
}

test('SIGKILL mid-epoch 2, then --resume: the last complete checkpoint survived, and the run ends bit for bit as an uninterrupted one', async () => {
  const dir = checkpointDir();
  const killed = await runAndSignal(['train', ...longRun, '--checkpoint-dir', dir], /epoch 2: step 3\//, 'SIGKILL');
  assert.equal(killed.signal, 'SIGKILL', `the run was killed, not finished: ${killed.err}`);
  assert.equal(killed.out, '');
  assert.equal(latestOf(dir).checkpoint, 'epoch-0001', 'epoch 1 is the last complete checkpoint');
  const resumed = await nin('train', ...longRun, '--checkpoint-dir', dir, '--resume');
  assert.equal(resumed.code, 0, resumed.err);
  const r = oneJsonObject(resumed.out) as unknown as TrainJson;
  const ref = await uninterrupted();
  assert.deepEqual(r.checkpoint?.resumedFrom, { epochsCompleted: 1, steps: 0 });
  assert.deepEqual(metrics(r), metrics(ref.result));
  assert.ok(weightsOf(dir).equals(weightsOf(ref.dir)), 'the final weights, byte for byte');
});

test('momentum + cosine schedule: SIGKILL mid-epoch 2, --resume: the velocity was saved, and the run ends bit for bit the same', async () => {
  const heavy = ['--data-dir', killFixture, '--resize', '67', '--batch-size', '16', '--epochs', '2', '--backend', 'wasm',
    '--seed', '1', '--json', '--lr', '0.02', '--momentum', '0.9', '--lr-schedule', 'cosine'];
  const refDir = checkpointDir();
  const whole = await nin('train', ...heavy, '--checkpoint-dir', refDir);
  assert.equal(whole.code, 0, whole.err);
  const dir = checkpointDir();
  const killed = await runAndSignal(['train', ...heavy, '--checkpoint-dir', dir], /epoch 2: step 3\//, 'SIGKILL');
  assert.equal(killed.signal, 'SIGKILL', `the run was killed, not finished: ${killed.err}`);
  const saved = path.join(dir, latestOf(dir).checkpoint);
  assert.ok(fs.statSync(path.join(saved, 'optimizer.bin')).size > 0, 'the velocity is in the checkpoint');
  // The checkpoint supplies momentum and schedule; naming another is refused.
  const other = await nin('train', '--resume', '--checkpoint-dir', dir, '--momentum', '0.5', '--data-dir', killFixture);
  assert.equal(other.code, 1);
  assert.match(oneLine(other.err), /--momentum 0\.5 differs from the checkpoint's 0\.9/);
  const resumed = await nin('train', '--resume', '--checkpoint-dir', dir, '--data-dir', killFixture, '--backend', 'wasm', '--json');
  assert.equal(resumed.code, 0, resumed.err);
  const r = oneJsonObject(resumed.out) as unknown as TrainJson;
  assert.deepEqual(r.checkpoint?.resumedFrom, { epochsCompleted: 1, steps: 0 });
  assert.deepEqual(metrics(r), metrics(oneJsonObject(whole.out) as unknown as TrainJson));
  assert.ok(weightsOf(dir).equals(weightsOf(refDir)), 'the final weights, byte for byte');
});

test('Ctrl-C mid-epoch 2: exit 130, a checkpoint at that step, one line saying how to resume; resuming ends bit for bit the same', async () => {
  const dir = checkpointDir();
  const stopped = await runAndSignal(['train', ...longRun, '--checkpoint-dir', dir], /epoch 2: step 3\//, 'SIGINT');
  assert.equal(stopped.code, 130, stopped.err);
  const told = JSON.parse(stopped.out) as { command: string; error: { message: string; kind: string }; history?: unknown };
  assert.deepEqual([told.command, told.error.kind, told.history], ['train', 'interrupted', undefined], 'no results for a run that did not finish, only its error');
  assert.match(told.error.message, /^interrupted: stopped at epoch 2, step \d+ of \d+; saved /);
  const last = stopped.err.trimEnd().split('\n').pop()!;
  assert.match(last, new RegExp(`^nin: interrupted: stopped at epoch 2, step (\\d) of 8; saved epoch 1 complete \\+ \\1 steps? of ` +
    `epoch 2 in ${dir}/epoch-0001-step-00000\\1; resume with \`nin train --resume --checkpoint-dir ${dir}\`$`));
  const steps = Number(/step (\d) of 8/.exec(last)![1]);
  assert.ok(steps >= 3 && steps < 8, `stopped after step ${steps}`);
  assert.deepEqual(latestOf(dir), { ...latestOf(dir), epochsCompleted: 1, steps });
  const resumed = await nin('train', ...longRun, '--checkpoint-dir', dir, '--resume');
  assert.equal(resumed.code, 0, resumed.err);
  const r = oneJsonObject(resumed.out) as unknown as TrainJson;
  const ref = await uninterrupted();
  assert.deepEqual(r.checkpoint?.resumedFrom, { epochsCompleted: 1, steps });
  assert.deepEqual(metrics(r), metrics(ref.result), 'resumed mid-epoch: the same losses and accuracies');
  assert.ok(weightsOf(dir).equals(weightsOf(ref.dir)), 'the final weights, byte for byte');
  assert.equal(process.listenerCount('SIGINT'), 0, 'in-process runs leave no SIGINT handler behind');
});

// ---------------------------------------------------------------------------------------------
// What can go wrong around a run (issue: a checkpoint folder and the files around a run)

test('SIGTERM mid-epoch 2 is handled like Ctrl-C: the step is saved, exit 143, and the resume ends bit for bit the same', async () => {
  const dir = checkpointDir();
  const stopped = await runAndSignal(['train', ...longRun, '--checkpoint-dir', dir], /epoch 2: step 3\//, 'SIGTERM');
  assert.equal(stopped.code, 143, stopped.err);
  const last = stopped.err.trimEnd().split('\n').pop()!;
  assert.match(last, /^nin: interrupted \(SIGTERM\): stopped at epoch 2, step \d of 8; saved epoch 1 complete \+ \d steps? of epoch 2 in /);
  const resumed = await nin('train', ...longRun, '--checkpoint-dir', dir, '--resume');
  assert.equal(resumed.code, 0, resumed.err);
  assert.deepEqual(metrics(oneJsonObject(resumed.out) as unknown as TrainJson), metrics((await uninterrupted()).result));
});

test('a run whose parent dies (npx killed) stops after the step and saves instead of training on as an orphan', async () => {
  const dir = checkpointDir();
  const args = longRun.map((a) => (a === '3' ? '6' : a)); // 6 epochs: long enough to be stopped
  const script = `"${process.execPath}" "${path.join(packageRoot(), 'bin', 'nin.js')}" train ${args.join(' ')} --checkpoint-dir "${dir}" 2>"${dir}.err" & echo $!; wait`;
  const parent = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  const childPid = await new Promise<number>((resolve) => parent.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  while (!/epoch 2: step 2\//.test(fs.existsSync(`${dir}.err`) ? fs.readFileSync(`${dir}.err`, 'utf8') : '')) {
    await new Promise((r) => setTimeout(r, 50));
  }
  parent.kill('SIGKILL');
  const gone = async () => { try { process.kill(childPid, 0); return false; } catch { return true; } };
  for (let i = 0; i < 300 && !(await gone()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(await gone(), 'the orphan stopped by itself');
  assert.match(fs.readFileSync(`${dir}.err`, 'utf8'), /nin: interrupted \(parent process \d+ exited\): stopped (at epoch \d, step \d of 8|before epoch \d); saved/);
  assert.ok(latestOf(dir).epochsCompleted < 6, 'it did not train on to the end');
});

test('two runs on one --checkpoint-dir: the second is refused at once, naming the first', async () => {
  const dir = checkpointDir();
  const first = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'nin.js'), 'train', ...longRun, '--checkpoint-dir', dir],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  first.stderr.on('data', (d) => { err += d; });
  while (!/epoch 1: step 1\//.test(err)) await new Promise((r) => setTimeout(r, 50));
  const second = await nin('train', ...longRun, '--checkpoint-dir', dir);
  first.kill('SIGKILL');
  assert.equal(second.code, 1);
  assert.match(oneLine(second.err), new RegExp(`^nin: checkpoint directory ${dir} is in use by another run \\(process ${first.pid} on `));
});

test('leaving out --seed is seed 0: two such runs give the same weights, and state.json says 0', async () => {
  const args = ['--data-dir', fixtureDir, '--resize', '67', '--batch-size', '8', '--epochs', '1', '--backend', 'wasm', '--init', 'he'];
  const a = checkpointDir();
  const b = checkpointDir();
  assert.equal((await nin('train', ...args, '--checkpoint-dir', a)).code, 0);
  assert.equal((await nin('train', ...args, '--checkpoint-dir', b)).code, 0);
  assert.ok(weightsOf(a).equals(weightsOf(b)));
  const state = JSON.parse(fs.readFileSync(path.join(a, 'epoch-0001', 'state.json'), 'utf8'));
  assert.equal(state.train.seed, 0);
  assert.equal(state.model.seed, 0);
});

test('--resume needs no --train-limit or --test-limit: the checkpoint knows them', async () => {
  const dir = checkpointDir();
  const first = await nin('train', '--json', '--epochs', '1', ...tinyCheckpointed, '--train-limit', '24', '--test-limit', '8', '--checkpoint-dir', dir);
  assert.equal(first.code, 0, first.err);
  const resumed = await nin('train', '--json', '--resume', '--epochs', '2', '--checkpoint-dir', dir, '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.equal(resumed.code, 0, resumed.err);
  assert.deepEqual((oneJsonObject(resumed.out).data as { train: { count: number } }).train.count, 24);
});

test('training and test files swapped in --data-dir: one line saying so', async () => {
  const swapped = path.join(tmp, 'swapped');
  const fixture = writeFixture(path.join(tmp, 'unswapped'), 16, 32);
  fs.cpSync(fixture, swapped, { recursive: true });
  const r = await nin('data', '--data-dir', swapped);
  assert.equal(r.code, 1);
  assert.match(oneLine(r.err), /train-images-idx3-ubyte\.gz holds 16 images but the test file .* holds 32: the training and test files look swapped .*; rename them/);
});

test('a symbolic-link loop as --data-dir or --checkpoint-dir: one line, not an internal error', async () => {
  const loop = path.join(tmp, 'cli-loop');
  fs.symlinkSync(loop, loop);
  const data = await nin('data', '--data-dir', loop);
  assert.equal(data.code, 1);
  assert.match(oneLine(data.err), /^nin: Fashion-MNIST directory .*cli-loop cannot be used \(ELOOP\): its symbolic links form a loop$/);
  const train = await nin('train', ...tinyCheckpointed, '--checkpoint-dir', loop);
  assert.equal(train.code, 1);
  assert.match(oneLine(train.err), /^nin: checkpoint directory .*cli-loop cannot be used \(ELOOP\)/);
});

test('eval: an intact model beside a damaged state.json or latest.json is evaluated, with a note', async () => {
  const dir = checkpointDir();
  assert.equal((await nin('train', '--epochs', '1', ...tinyCheckpointed, '--checkpoint-dir', dir)).code, 0);
  fs.writeFileSync(path.join(dir, 'latest.json'), '{"checkpoint": "epo');
  fs.writeFileSync(path.join(dir, 'epoch-0001', 'state.json'), 'garbage');
  const r = await nin('eval', '--model', dir, '--data-dir', fixtureDir, '--backend', 'wasm', '--json');
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /nin: note: .*latest\.json is not valid JSON.*; used epoch-0001/);
  assert.equal(typeof oneJsonObject(r.out).accuracy, 'number');
});

test('eval of a model that is not for Fashion-MNIST (3 channels, 2 outputs) or whose weights path leaves its folder: one line', async () => {
  /** Saves a freshly built NiN of `config` into tmp/`name`. */
  const saved = async (name: string, config: Parameters<typeof buildNin>[0]) => {
    const folder = path.join(tmp, name);
    const model = buildNin(config);
    await saveLayersModel(model, folder);
    model.dispose();
    return folder;
  };
  const three = await saved('three-channel', { inputSize: 67, inputChannels: 3 });
  const a = await nin('eval', '--model', three, '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.equal(a.code, 1);
  assert.match(oneLine(a.err), /^nin: the model takes 3-channel images, but Fashion-MNIST's are grey/);
  const two = await saved('two-outputs', { inputSize: 67, numClasses: 2 });
  const b = await nin('eval', '--model', two, '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.equal(b.code, 1);
  assert.match(oneLine(b.err), /^nin: the model has outputs of shape \[null, 2\] but there are 10 classes/);
  const json = JSON.parse(fs.readFileSync(path.join(two, 'model.json'), 'utf8'));
  json.weightsManifest[0].paths = ['../../../../etc/passwd'];
  fs.writeFileSync(path.join(two, 'model.json'), JSON.stringify(json));
  const c = await nin('eval', '--model', two, '--data-dir', fixtureDir, '--backend', 'wasm');
  assert.equal(c.code, 1);
  assert.match(oneLine(c.err), /names the weight file "\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd", which is not inside .*two-outputs/);
});

test('an empty path is refused for every option that names one, never taken as the current folder', async () => {
  for (const args of [['eval', '--model', ''], ['eval', '--model', '  '], ['train', '--checkpoint-dir', ''], ['data', '--data-dir', '']]) {
    const r = await nin(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.err}`);
    assert.match(oneLine(r.err), /^nin: --(model|checkpoint-dir|data-dir) must /, args.join(' '));
  }
});

test('Ctrl-C at any moment of a start leaves no folder holding only nin.lock: it is removed, or holds a checkpoint', async () => {
  for (const delay of [30, 120, 250, 400, 700]) {
    const dir = path.join(checkpointDir(), 'fresh');
    const child = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'nin.js'), 'train', ...longRun, '--checkpoint-dir', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => { err += c; });
    child.stdout.resume();
    await new Promise((resolve) => setTimeout(resolve, delay));
    child.kill('SIGINT');
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
    assert.ok(code === 130 || code === 0 || signal === 'SIGINT', `after ${delay} ms: exit ${code} ${signal}: ${err}`);
    const left = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
    assert.ok(left.length === 0 || left.includes('latest.json'), `after ${delay} ms the folder holds ${left.join(', ')}`);
    assert.ok(!left.includes('nin.lock'), `after ${delay} ms the lock was left behind`);
  }
});
