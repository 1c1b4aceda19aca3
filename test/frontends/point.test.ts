/**
 * `nin point`, run in-process through `main(argv, io)` as test/frontends/cli.test.ts runs the
 * other commands: the pointing game's report and its JSON, and one-line errors naming flags.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nin, oneLine } from './harness';
import { bandSplit, idxBytes } from '../fixtures';
import { nin as buildNin } from '../../lib/core/model';
import { saveLayersModel } from '../../lib/storage/layersFolder';
import { selectBackend } from '../../lib/kernels/backend';

before(async () => {
  await selectBackend('wasm');
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-point-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Fashion-MNIST look-alike files: 20 band images for each split (label k: a bright band at rows 2k..2k+2). */
function writeData(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const split = bandSplit(20, 3);
  for (const [name, bytes] of [
    ['train-images-idx3-ubyte', idxBytes([20, 28, 28], split.images)], ['train-labels-idx1-ubyte', idxBytes([20], split.labels)],
    ['t10k-images-idx3-ubyte', idxBytes([20, 28, 28], split.images)], ['t10k-labels-idx1-ubyte', idxBytes([20], split.labels)],
  ] as const) fs.writeFileSync(path.join(dir, name), bytes);
  return dir;
}

const dataDir = writeData(path.join(tmp, 'fashion'));
let modelDir: Promise<string> | undefined;
/** A 67-px NiN (untrained, He initialisation) saved as model.json + weights.bin, made once. */
function savedModel(): Promise<string> {
  modelDir ??= (async () => {
    const dir = path.join(tmp, 'model');
    const model = buildNin({ inputSize: 67, seed: 3, init: 'he' });
    await saveLayersModel(model, dir);
    model.dispose();
    return dir;
  })();
  return modelDir;
}
const common = async () => ['--model', await savedModel(), '--data-dir', dataDir, '--backend', 'wasm'];

test('point --json: one JSON object with the settings played, hit rate, chance and each class', async () => {
  const r = await nin('point', ...await common(), '--grid', '2', '--mosaics', '3', '--seed', '4', '--json');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '');
  const j = JSON.parse(r.out) as {
    command: string; model: { inputSize: number }; data: { count: number }; config: Record<string, unknown>;
    pairs: number; hits: number; hitRate: number; chance: number; inputSide: number; mapSide: number;
    perClass: { name: string; present: number; hits: number }[];
  };
  assert.equal(j.command, 'point');
  assert.equal(j.model.inputSize, 67);
  assert.equal(j.data.count, 20);
  assert.deepEqual(j.config, { grid: 2, mosaics: 3, seed: 4, tile: 67, layout: 'aligned', taps: 'trained', score: 'softmax', peak: 'cell', draw: 'any' });
  assert.deepEqual([j.inputSide, j.mapSide], [227, 6]);
  assert.equal(j.hitRate, j.hits / j.pairs);
  assert.ok(j.chance > 0 && j.chance <= 1);
  assert.equal(j.perClass.length, 10);
  assert.equal(j.perClass[9].name, 'ankle boot');
  assert.equal(j.perClass.reduce((a, k) => a + k.present, 0), j.pairs);
});

test('point prints the settings, the hit rate beside chance, and a row per class', async () => {
  const r = await nin('point', ...await common(), '--grid', '3', '--mosaics', '2', '--layout', 'packed', '--taps', 'all', '--score', 'map', '--peak', 'drawn');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^pointing game: 2 mosaics of 3×3 test images \(seed 1\), 67-px images, packed layout \(a 201-px input, 5×5 maps\), all taps, peaks of the class map on the map as drawn$/m);
  assert.match(r.out, /^hit rate \d\.\d{3} \(\d+ of \d+ classes present\), chance \d\.\d{3}$/m);
  assert.match(r.out, /^ankle boot +\d+ +\d+ +(—|\d\.\d{3}) +(—|\d\.\d{3})$/m);
});

test('point refuses bad settings in one line naming the flag, before loading anything', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--grid', '1'], /^nin: --grid must be an integer from 2 to 8, got 1$/],
    [['--layout', 'diagonal'], /^nin: --layout must be one of aligned, packed, got "diagonal"$/],
    [['--tile-cells', '4'], /^nin: --tile-cells must be odd/],
    [['--layout', 'packed', '--tile-cells', '5'], /^nin: --tile-cells applies to the aligned --layout only$/],
    [['--score', 'max'], /^nin: --score must be one of softmax, contrast, map, got "max"$/],
    [['--tile', '300'], /^nin: --tile must be an integer from 28 to 224, got 300$/],
  ];
  for (const [flags, message] of cases) {
    const r = await nin('point', '--model', path.join(tmp, 'no-such-model'), ...flags);
    assert.equal(r.code, 1, flags.join(' '));
    assert.match(oneLine(r.err), message);
  }
});

test('point: a missing model, a dense one, or a game the test images cannot fill: one line each, exit 1; --json says it too', async () => {
  const missing = await nin('point', '--model', path.join(tmp, 'no-such-model'), '--data-dir', dataDir);
  assert.equal(missing.code, 1);
  assert.match(oneLine(missing.err), /^nin: model directory .*no-such-model does not exist/);

  const denseDir = path.join(tmp, 'dense');
  const dense = buildNin({ inputSize: 67, head: 'dense' });
  await saveLayersModel(dense, denseDir);
  dense.dispose();
  const refused = await nin('point', '--model', denseDir, '--data-dir', dataDir, '--backend', 'wasm');
  assert.equal(refused.code, 1);
  assert.match(oneLine(refused.err), /is not a NiN the pointing game can read: /);

  const distinct = await nin('point', ...await common(), '--draw', 'distinct', '--json');
  assert.equal(distinct.code, 1);
  assert.match(oneLine(distinct.err), /^nin: --draw distinct needs a class per tile: a 4×4 mosaic has 16 tiles .*; lower --grid$/);
  const j = JSON.parse(distinct.out) as { command: string; error: { kind: string; message: string } };
  assert.deepEqual([j.command, j.error.kind], ['point', 'config']);
});
