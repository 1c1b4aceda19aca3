/**
 * `nin time-to-accuracy`, run in-process through `main(argv, io)`: its report over seeds, its
 * JSON (which scripts/torch_time_to_accuracy.py reads), and one-line errors naming flags.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nin } from './harness';
import { summarize } from '../../lib/frontends/timeToAccuracyCommand';
import { bandSplit, idxBytes } from '../fixtures';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-tta-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The four Fashion-MNIST files, of band images (test/fixtures.ts). */
function writeBands(dir: string, trainCount: number, testCount: number): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, split] of [['train', bandSplit(trainCount)], ['t10k', bandSplit(testCount, 3)]] as const) {
    fs.writeFileSync(path.join(dir, `${name}-images-idx3-ubyte`), idxBytes([split.count, 28, 28], split.images));
    fs.writeFileSync(path.join(dir, `${name}-labels-idx1-ubyte`), idxBytes([split.count], split.labels));
  }
  return dir;
}

const bands = writeBands(path.join(tmp, 'bands'), 24, 10);
const recipe = ['--data-dir', bands, '--epochs', '1', '--batch-size', '8', '--resize', '67', '--init', 'he', '--backend', 'wasm'];

test('two seeds, an easy target: each reached at its first evaluation, and the summary', async () => {
  const { code, out, err } = await nin('time-to-accuracy', ...recipe, '--target', '0.01', '--runs', '2', '--seed', '4');
  assert.equal(code, 0, err);
  assert.match(out, /^seed 4: test accuracy [\d.]+ ≥ 0.01 after 0.67 epochs \(16 images\), [\d.]+ s, of which evaluation [\d.]+ s$/m);
  assert.match(out, /^seed 5: test accuracy/m);
  assert.match(out, /^2 of 2 runs reached 0.01: median [\d.]+ s \([\d.]+–[\d.]+ s\), median 0.67 epochs$/m);
  assert.match(err, /^seed 4: 0.67 epochs, [\d.]+ s: test acc [\d.]+$/m, 'each evaluation as it comes');
});

test('--json: one object with the recipe as it ran, every curve, the summary', async () => {
  const { code, out, err } = await nin('time-to-accuracy', ...recipe, '--target', '1', '--evals-per-epoch', '3', '--json');
  assert.equal(code, 0, err);
  const r = JSON.parse(out);
  assert.equal(r.command, 'time-to-accuracy');
  assert.equal(r.profile, 'cpu', 'the cpu profile unless --profile says otherwise');
  assert.equal(r.target, 1);
  assert.equal(r.evalsPerEpoch, 3);
  assert.equal(r.runs.length, 1);
  const run = r.runs[0];
  assert.equal(run.seed, 0);
  assert.equal(run.outcome, 'measured');
  assert.equal(run.result.reached, false);
  assert.deepEqual(run.result.curve.map((p: { images: number }) => p.images), [8, 16, 24]);
  assert.equal(run.result.recipe.train.optimizer, 'adam', "the cpu profile's optimizer under the flags given");
  assert.equal(run.result.recipe.train.batchSize, 8);
  assert.equal(run.result.recipe.model.init, 'he');
  assert.deepEqual(r.summary, { runs: 1, reached: 0 });
});

test('bad settings: one line naming the flag, exit 1, nothing trained', async () => {
  for (const [args, flag] of [[['--target', '0'], '--target'], [['--target', '90'], '--target'], [['--evals-per-epoch', '0'], '--evals-per-epoch'],
    [['--runs', '0'], '--runs'], [['--label-smoothing', '1'], '--label-smoothing']] as const) {
    const { code, out, err } = await nin('time-to-accuracy', ...recipe, ...args);
    assert.equal(code, 1, args.join(' '));
    assert.equal(out, '');
    assert.match(err, new RegExp(`^nin: ${flag} must `), err);
    assert.equal(err.split('\n').length, 2, 'one line');
  }
});

test('summarize: medians over every run, a miss or a dead seed counting as slower than any; none when half or more missed', () => {
  const measured = (seed: number, reached: boolean, seconds: number, epochs: number) =>
    ({ seed, outcome: 'measured' as const, result: { reached, seconds, epochs } as never });
  const died = (seed: number) => ({ seed, outcome: 'unhealthy' as const, message: 'died' });
  const four = [measured(1, true, 30, 1), measured(2, true, 10, 0.5), measured(5, true, 20, 1.5), measured(6, true, 40, 2)];
  assert.deepEqual(summarize([...four, measured(3, false, 99, 2), died(4)]),
    { runs: 6, reached: 4, medianSeconds: 35, minSeconds: 10, maxSeconds: 40, medianEpochs: 1.75 });
  assert.deepEqual(summarize([...four.slice(0, 3), measured(3, false, 99, 2), died(4)]),
    { runs: 5, reached: 3, medianSeconds: 30, minSeconds: 10, maxSeconds: 30, medianEpochs: 1.5 });
  assert.deepEqual(summarize([four[0], four[1], measured(3, false, 99, 2), died(4)]), { runs: 4, reached: 2, minSeconds: 10, maxSeconds: 30 });
  assert.deepEqual(summarize([]), { runs: 0, reached: 0 });
});
