/**
 * lib/training/run.ts: a run holds its checkpoint folder alone, never removes what it did not
 * write, recovers from a lost pointer, and turns a full disk, a permission or an impossible
 * image size into one line that names the folder and the last good checkpoint.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bandSplit } from '../fixtures';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../lib/kernels/backend';
import { FileError } from '../../lib/storage/files';
import { saveLayersModel } from '../../lib/storage/layersFolder';
import { nin } from '../../lib/core/model';
import { RunOptions, TrainingRun } from '../../lib/training/run';
import type { UserError } from '../../lib/core/validate';
import { ConfigError } from '../../lib/core/validate';

// The real fs module, whose functions the tests below replace for a moment (the library
// reads them through the module object, so a replacement reaches it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeFs: typeof fs = require('node:fs');

before(async () => {
  await selectBackend('wasm');
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-run-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let count = 0;
const freshDir = () => path.join(tmp, `run${++count}`);

const data = { train: bandSplit(32), test: bandSplit(16, 3) };
const options = (dir: string, more: Partial<RunOptions> = {}): RunOptions => ({
  train: { numEpochs: 1, batchSize: 8, resize: 67, seed: 1 }, model: { init: 'he' }, checkpointDir: dir, ...more,
});

/** Runs a run to its end and disposes the model; resolves to its result. */
async function run(opts: RunOptions, hooks = {}) {
  const outcome = await TrainingRun.open(opts).train(data, hooks);
  outcome.model.dispose();
  return outcome;
}

/** Replaces `nodeFs[name]` while `fn` runs, by a function that fails with `code` when `when(args)`. */
async function failing<K extends keyof typeof fs>(name: K, code: string, when: (...args: unknown[]) => boolean, fn: () => Promise<void>) {
  const real = nodeFs[name] as (...args: unknown[]) => unknown;
  (nodeFs as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
    if (when(...args)) throw Object.assign(new Error(`${code}: simulated`), { code, syscall: name, path: String(args[0]) });
    return real.apply(nodeFs, args);
  };
  try {
    await fn();
  } finally {
    (nodeFs as unknown as Record<string, unknown>)[name] = real;
  }
}

describe('one folder, one run', () => {
  test('a second run on the same folder is refused before it loads anything; the first goes on and lets go at the end', async () => {
    const dir = freshDir();
    const first = TrainingRun.open(options(dir));
    assert.throws(() => TrainingRun.open(options(dir)), (err: unknown) => err instanceof ConfigError && /is in use by another run \(process \d+/.test(err.message));
    const outcome = await first.train(data);
    outcome.model.dispose();
    assert.ok(!fs.existsSync(path.join(dir, 'nin.lock')), 'the lock is gone when the run ends');
    TrainingRun.open(options(dir, { resume: 'always', train: { numEpochs: 2 } })).release();
  });

  test('a run that fails still lets go of its folder', async () => {
    const dir = freshDir();
    const plan = TrainingRun.open(options(dir, { train: { numEpochs: 1, batchSize: 8, resize: 10000, seed: 1 } }));
    await assert.rejects(plan.train(data), (err: unknown) => err instanceof ConfigError &&
      /^resize 10000 needs about \d+\.\d GB per training image .* use images of at most about \d+ px$/.test(err.message));
    assert.ok(!fs.existsSync(dir), 'the folder it created, empty, is removed again');
  });
});

describe('only what the run wrote is removed', () => {
  test("README.md, notes.tmp-2024, backup.tmp-1/ and epoch-2024/ (no state.json of ours) survive a run's saves", async () => {
    const dir = freshDir();
    fs.mkdirSync(path.join(dir, 'backup.tmp-1'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'epoch-2024'));
    fs.writeFileSync(path.join(dir, 'epoch-2024', 'photo.txt'), 'mine');
    fs.writeFileSync(path.join(dir, 'README.md'), 'notes');
    fs.writeFileSync(path.join(dir, 'notes.tmp-2024'), 'more notes');
    // A leftover of our own killed write is ours to remove.
    fs.mkdirSync(path.join(dir, 'epoch-0001.tmp-99999999'));
    await run(options(dir, { train: { numEpochs: 2, batchSize: 8, resize: 67, seed: 1 } }));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['README.md', 'backup.tmp-1', 'epoch-0002', 'epoch-2024', 'latest.json', 'notes.tmp-2024']);
    assert.equal(fs.readFileSync(path.join(dir, 'epoch-2024', 'photo.txt'), 'utf8'), 'mine');
  });

  for (const [what, damage] of [
    ['missing', (dir: string) => fs.rmSync(path.join(dir, 'latest.json'))],
    ['a dangling link', (dir: string) => { fs.rmSync(path.join(dir, 'latest.json')); fs.symlinkSync(path.join(dir, 'gone.json'), path.join(dir, 'latest.json')); }],
    ['naming a missing folder', (dir: string) => fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify({ format: 'nin-tfjs-checkpoint', checkpoint: 'epoch-0009' }))],
  ] as const) {
    test(`latest.json ${what}: a fresh run is refused, and --resume goes on from the complete epoch-0001`, async () => {
      const dir = freshDir();
      await run(options(dir));
      damage(dir);
      assert.throws(() => TrainingRun.open(options(dir)), /already holds a checkpoint; add resume to continue it/);
      const plan = TrainingRun.open(options(dir, { resume: 'always', train: { numEpochs: 2 } }));
      assert.equal(plan.resumed?.name, 'epoch-0001');
      assert.match(plan.resumed!.recovered!, /using epoch-0001, the newest complete checkpoint there/);
      const outcome = await plan.train(data);
      outcome.model.dispose();
      assert.deepEqual(outcome.history.epochs.map((e) => e.epoch), [1, 2]);
      assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')).checkpoint, 'epoch-0002', 'the pointer is whole again');
    });
  }

  test('a resume takes its data sizes from the checkpoint', async () => {
    const dir = freshDir();
    await run(options(dir));
    const plan = TrainingRun.open(options(dir, { resume: 'always', train: { numEpochs: 2 } }));
    plan.release();
    assert.deepEqual(plan.limits, { trainLimit: 32, testLimit: 16 });
  });

  test('a foreign model put into a checkpoint folder is not resumed as NiN', async () => {
    const dir = freshDir();
    await run(options(dir));
    const other = nin({ inputSize: 67, oneByOneCount: 1 });
    fs.rmSync(path.join(dir, 'epoch-0001', 'model.json'));
    fs.rmSync(path.join(dir, 'epoch-0001', 'weights.bin'));
    await saveLayersModel(other, path.join(dir, 'epoch-0001'));
    other.dispose();
    // As an older checkpoint without checksums (which would catch the swap first): what is checked here is the shapes.
    const stateFile = path.join(dir, 'epoch-0001', 'state.json');
    const { checksums: _, ...state } = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    fs.writeFileSync(stateFile, JSON.stringify(state));
    fs.rmSync(path.join(dir, 'epoch-0001', 'state.sha256'));
    const plan = TrainingRun.open(options(dir, { resume: 'always', train: { numEpochs: 2 } }));
    await assert.rejects(plan.train(data), /epoch-0001\/model\.json is not the NiN its state\.json describes/);
  });

  test('a notebook rerun (resume: auto) finds its run finished and hands back the model without training', async () => {
    const dir = freshDir();
    await run(options(dir));
    let steps = 0;
    const again = await run(options(dir, { resume: 'auto' }), { onBatchEnd: () => { steps++; } });
    assert.equal(steps, 0);
    assert.equal(again.history.epochs.length, 1);
  });
});

describe('disks and permissions', () => {
  const tensors = () => tf.memory().numTensors;

  test('a full disk while saving epoch 2: one line naming the folder, the room needed and the good epoch 1; nothing half-written', async () => {
    const dir = freshDir();
    await run(options(dir));
    const before = tensors();
    const plan = TrainingRun.open(options(dir, { resume: 'always', train: { numEpochs: 2 } }));
    await failing('writeFileSync', 'ENOSPC', (target) => typeof target === 'number', async () => {
      await assert.rejects(plan.train(data), (err: unknown) => {
        assert.ok(err instanceof FileError, String(err));
        assert.equal(err.code, 'ENOSPC');
        assert.match(err.message, new RegExp(`^cannot save a checkpoint in ${dir} \\(ENOSPC\\): no space left on the device; ` +
          'a save needs about 8 MB there, and the checkpoints already in it are as they were; the last good checkpoint ' +
          `\\(epoch 1 complete\\) stays in ${dir}$`));
        return true;
      });
    });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['epoch-0001', 'latest.json'], 'no epoch-0002.tmp-* left, no lock');
    assert.equal(tensors(), before, 'no tensors left behind');
  });

  test('the folder turned read-only mid-run: one line, the good checkpoint kept', async () => {
    const dir = freshDir();
    await run(options(dir));
    const plan = TrainingRun.open(options(dir, { resume: 'always', train: { numEpochs: 2 } }));
    await failing('renameSync', 'EACCES', () => true, async () => {
      await assert.rejects(plan.train(data), /cannot save a checkpoint in .* \(EACCES\): permission denied; .*the last good checkpoint \(epoch 1 complete\)/);
    });
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')).checkpoint, 'epoch-0001');
  });

  test('an old checkpoint that cannot be removed after a good save is a warning; the run goes on', async () => {
    const dir = freshDir();
    const warnings: string[] = [];
    await failing('rmSync', 'EACCES', (target) => /epoch-0001$/.test(String(target)), async () => {
      await run(options(dir, { train: { numEpochs: 2, batchSize: 8, resize: 67, seed: 1 } }), { onWarning: (w: UserError) => warnings.push(w.message) });
    });
    const removal = warnings.filter((w) => w.startsWith('could not remove'));
    assert.equal(removal.length, 1, warnings.join('\n'));
    assert.match(removal[0], /^could not remove the old .*epoch-0001 \(EACCES\): permission denied$/);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')).checkpoint, 'epoch-0002');
  });

  test('a symbolic-link loop as the checkpoint folder: one line saying so', () => {
    const loop = path.join(tmp, 'loop');
    fs.symlinkSync(loop, loop);
    assert.throws(() => TrainingRun.open(options(loop)), (err: unknown) =>
      err instanceof FileError && /checkpoint directory .*loop cannot be used \(ELOOP\): its symbolic links form a loop/.test(err.message));
  });
});

test('a checkpoint folder that cannot be created (under /proc, where recursive mkdir would spin) is one line; nested ones are made', () => {
  assert.throws(() => TrainingRun.open(options('/proc/nin-no-such/run')), (err: unknown) =>
    err instanceof FileError && /^checkpoint directory \/proc\/nin-no-such\/run cannot be created \(ENOENT\)/.test(err.message));
  const nested = path.join(tmp, 'a', 'b', 'c');
  TrainingRun.open(options(nested)).release();
  assert.ok(!fs.existsSync(nested), 'created, then removed again since nothing was saved');
  assert.ok(fs.existsSync(path.join(tmp, 'a', 'b')));
});

describe('options', () => {
  test('a mistyped or unknown top-level option is refused like a nested one, naming it', () => {
    assert.throws(() => TrainingRun.open({ checkpointdir: 'x' } as unknown as RunOptions),
      (err: unknown) => err instanceof ConfigError && /unknown run option "checkpointdir"; known: .*checkpointDir/.test(err.message));
    assert.throws(() => TrainingRun.open({ train: { lerningRate: 1 } } as unknown as RunOptions), /unknown training option "lerningRate"/);
  });

  test('null or malformed options are one ConfigError, not a TypeError', () => {
    for (const bad of [null, 3, 'cpu']) {
      assert.throws(() => TrainingRun.open(bad as unknown as RunOptions), (err: unknown) => err instanceof ConfigError && /options must be an object/.test(err.message));
    }
    assert.throws(() => TrainingRun.open({ train: null } as unknown as RunOptions),
      (err: unknown) => err instanceof ConfigError && err.messageFor({}) === 'train must be an object of settings, got null');
    assert.throws(() => TrainingRun.open({ profile: 'huge' as 'cpu' }), /profile must be one of full, cpu, tiny, got "huge"/);
    assert.throws(() => TrainingRun.open({ checkpointDir: '' }), /checkpointDir/);
    assert.throws(() => TrainingRun.open({ resume: 'sometimes' as 'auto' }), /resume must be one of never, always, auto/);
  });

  test("the model's seed is the run's: a separate model seed is refused", () => {
    assert.throws(() => TrainingRun.open({ model: { seed: 3 } as RunOptions['model'] }),
      (err: unknown) => err instanceof ConfigError && err.field === 'seed' && /set seed instead of the model's/.test(err.message));
    const run = TrainingRun.open({ train: { seed: 5, resize: 67 } });
    assert.deepEqual([run.model.seed, run.model.inputSize], [5, 67]);
  });

  test('a profile gives the settings; the options given override them', () => {
    const run = TrainingRun.open({ profile: 'tiny', train: { numEpochs: 1 }, model: { init: 'glorot' } });
    assert.deepEqual([run.config.numEpochs, run.config.optimizer, run.config.resize, run.model.init], [1, 'adam', 67, 'glorot']);
    assert.deepEqual(run.limits, { trainLimit: 256, testLimit: 128 });
    // The command line passes every flag left out as undefined: that keeps the profile's value.
    const cli = TrainingRun.open({ profile: 'cpu', train: { lr: undefined, resize: undefined, seed: 1 }, model: { init: undefined } });
    assert.deepEqual([cli.config.resize, cli.config.optimizer, cli.config.lr, cli.model.classBlockBias, cli.model.init], [67, 'adam', 0.003, 0.1, 'he']);
  });

  test('a resume refuses every field that differs from the checkpoint (dropout, micro-batches, seed, margin), auto included', async () => {
    const dir = freshDir();
    await run(options(dir));
    const differing: Array<[string, Partial<RunOptions>]> = [
      ['dropout', { model: { init: 'he', dropout: 0.3 } }],
      ['microBatchSize', { train: { numEpochs: 2, batchSize: 8, resize: 67, seed: 1, microBatchSize: 4 } }],
      ['seed', { train: { numEpochs: 2, batchSize: 8, resize: 67, seed: 2 } }],
      ['classBlockMargin', { train: { numEpochs: 2, batchSize: 8, resize: 67, seed: 1, classBlockMargin: 0.5 } }],
    ];
    for (const [field, more] of differing) {
      for (const resume of ['always', 'auto'] as const) {
        assert.throws(() => TrainingRun.open(options(dir, { resume, ...more })),
          (err: unknown) => err instanceof ConfigError && err.field === field && /differs from the checkpoint's/.test(err.message),
          `${field} with resume: ${resume}`);
      }
    }
    const same = TrainingRun.open(options(dir, { resume: 'auto' }));
    same.release();
    assert.equal(same.resumed?.name, 'epoch-0001', 'the same options resume');
  });
});
