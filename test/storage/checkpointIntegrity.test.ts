/**
 * Checkpoints that protect themselves: every file's SHA-256 recorded and checked by every
 * reader (a flipped byte is refused, a resume falls back to a checkpoint that verifies, an
 * older checkpoint without checksums still loads with a note); a damaged latest.json is
 * replaced by the next save, never followed out of the folder; a checkpoint folder is never
 * taken for the folder of a run; a FIFO never blocks a reader; the lock file is fsynced.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../../lib/kernels/backend';
import {
  CheckpointContents, checkpointFolderKind, checkRunFolder, latestCheckpoint, loadCheckpoint, loadModelFromDir, saveCheckpoint,
} from '../../lib/storage/checkpoint';
import { FolderLock, LOCK_FILE } from '../../lib/storage/folderLock';
import { nin, resolveNinConfig } from '../../lib/core/model';
import { disposeOptimizer, makeOptimizer } from '../../lib/core/optimizers';
import { resolveTrainConfig } from '../../lib/core/trainConfig';
import { ConfigError } from '../../lib/core/validate';
import * as runModule from '../../lib/training/run';

// The real fs module, whose fsyncSync a test watches (the library reads it through the module object).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeFs: typeof fs = require('node:fs');

let model: tfl.Sequential;
before(async () => {
  await selectBackend('wasm');
  model = nin(modelConfig);
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-integrity-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => path.join(tmp, `run${++dirCount}`);

const trainConfig = resolveTrainConfig({ numEpochs: 3, batchSize: 8, lr: 0.1, resize: 67, seed: 7 });
const modelConfig = resolveNinConfig({ inputSize: 67, seed: 7, oneByOneCount: 0 });
const result = (epoch: number) => ({ epoch, trainLoss: 2.3, trainAcc: 0.1, testAcc: 0.1, examplesPerSec: 9, seconds: 1 });
const contents = (epochs: number, train = trainConfig): CheckpointContents => ({
  history: Array.from({ length: epochs }, (_, i) => result(i + 1)), train, model: modelConfig,
  data: { trainCount: 32, testCount: 16 },
});
const sha = (data: string | Uint8Array) => crypto.createHash('sha256').update(data).digest('hex');

/** Asserts `err` is a one-line ConfigError matching every pattern. */
function oneLine(err: unknown, ...patterns: RegExp[]): true {
  assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
  assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
  for (const p of patterns) assert.match(err.message, p);
  return true;
}

/** Flips every bit of `count` bytes in the middle of `file`, keeping its size. */
function flipBytes(file: string, count = 4): void {
  const bytes = fs.readFileSync(file);
  const at = Math.floor(bytes.length / 2);
  for (let i = 0; i < count; i++) bytes[at + i] ^= 0xff;
  fs.writeFileSync(file, bytes);
}

after(() => model.dispose());

/** A momentum optimizer that has taken one step on `model`, so that it has slots (saved in optimizer.bin). */
function steppedMomentum(): { config: ReturnType<typeof resolveTrainConfig>; optimizer: tf.Optimizer } {
  const config = resolveTrainConfig({ ...trainConfig, momentum: 0.9 });
  const optimizer = makeOptimizer(config);
  const x = tf.zeros([1, 67, 67, 1]);
  optimizer.minimize(() => tf.mean(model.apply(x, { training: false }) as tf.Tensor) as tf.Scalar, false,
    model.trainableWeights.map((w) => w.read() as tf.Variable));
  x.dispose();
  return { config, optimizer };
}

/** A folder with epoch-0001 and epoch-0002, both complete, latest.json naming epoch-0002. */
async function twoCheckpoints(): Promise<string> {
  const dir = freshDir();
  await saveCheckpoint(dir, model, contents(1));
  const keep = path.join(tmp, `keep${dirCount}`);
  fs.cpSync(path.join(dir, 'epoch-0001'), keep, { recursive: true });
  await saveCheckpoint(dir, model, contents(2)); // removes epoch-0001
  fs.cpSync(keep, path.join(dir, 'epoch-0001'), { recursive: true });
  return dir;
}

describe('checksums', () => {
  test('state.json records the SHA-256 of model.json, weights.bin and optimizer.bin; state.sha256 that of state.json', async () => {
    const { config, optimizer } = steppedMomentum();
    try {
      const saved = await saveCheckpoint(freshDir(), model, contents(1, config), optimizer);
      const file = (name: string) => fs.readFileSync(path.join(saved.path, name));
      const stateText = file('state.json');
      const state = JSON.parse(stateText.toString('utf8'));
      assert.deepEqual(state.checksums, {
        'model.json': sha(file('model.json')), 'weights.bin': sha(file('weights.bin')), 'optimizer.bin': sha(file('optimizer.bin')),
      });
      assert.deepEqual(saved.state.checksums, state.checksums);
      assert.equal(file('state.sha256').toString('utf8'), `${sha(stateText)}  state.json\n`, "sha256sum's format");
      // `sha256sum -c` agrees, where there is one.
      try {
        assert.match(execFileSync('sha256sum', ['-c', 'state.sha256'], { cwd: saved.path }).toString(), /state\.json: OK/);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    } finally {
      disposeOptimizer(optimizer);
    }
  });

  test('a weights.bin of the right size with flipped bytes: eval refuses in one line naming the file', async () => {
    const dir = freshDir();
    const saved = await saveCheckpoint(dir, model, contents(1));
    const weights = path.join(saved.path, 'weights.bin');
    flipBytes(weights);
    const mismatch = new RegExp(`^${weights} does not match its checksum in ${saved.path}/state\\.json: the file is damaged; `);
    await assert.rejects(loadModelFromDir(dir), (err) => oneLine(err, mismatch));
    await assert.rejects(loadModelFromDir(saved.path), (err) => oneLine(err, mismatch));
    // A resume has nothing else to fall back on: the same line.
    await assert.rejects(loadCheckpoint(dir), (err) => oneLine(err, mismatch, /delete .* to start afresh/));
  });

  test('a damaged model.json, optimizer.bin or state.json (still valid JSON) is refused the same way', async () => {
    const { config, optimizer } = steppedMomentum();
    try {
      for (const [file, recordedIn] of [['optimizer.bin', 'state.json'], ['model.json', 'state.json'], ['state.json', 'state.sha256']]) {
        const dir = freshDir();
        const saved = await saveCheckpoint(dir, model, contents(1, config), optimizer);
        const target = path.join(saved.path, file);
        if (file === 'optimizer.bin') flipBytes(target);
        else fs.writeFileSync(target, fs.readFileSync(target, 'utf8').replace(/"epoch": 1|"Sequential"/, (m) => m.replace('1', '2').replace('Sequential', 'Sequentiel')));
        assert.notEqual(sha(fs.readFileSync(target)), file === 'state.json' ? undefined : saved.state.checksums![file], 'changed');
        const pattern = new RegExp(`${target} does not match its checksum in .*${recordedIn.replace('.', '\\.')}: the file is damaged`);
        await assert.rejects(loadCheckpoint(dir), (err) => oneLine(err, pattern));
      }
    } finally {
      disposeOptimizer(optimizer);
    }
  });

  test('flipped weights in the newest checkpoint: a resume falls back to the newest one that verifies, saying so', async () => {
    const dir = await twoCheckpoints();
    flipBytes(path.join(dir, 'epoch-0002', 'weights.bin'));
    const found = latestCheckpoint(dir);
    assert.equal(found.name, 'epoch-0001');
    assert.match(found.recovered!, /epoch-0002\/weights\.bin does not match its checksum in .*state\.json: the file is damaged; using epoch-0001, the newest complete checkpoint there$/);
    // It loads what was found without reading latest.json and state.json again.
    fs.writeFileSync(path.join(dir, 'latest.json'), 'not read again');
    fs.writeFileSync(path.join(dir, 'epoch-0001', 'state.json'), 'not read again');
    const loaded = await loadCheckpoint(found);
    try {
      assert.equal(loaded.name, 'epoch-0001');
      assert.equal(loaded.state.epochsCompleted, 1);
      assert.equal(loaded.recovered, found.recovered);
    } finally {
      loaded.model.dispose();
      disposeOptimizer(loaded.optimizer);
    }
  });

  test('a checkpoint written before checksums (no record, no state.sha256) still loads, with a note', async () => {
    const dir = freshDir();
    const saved = await saveCheckpoint(dir, model, contents(1));
    const stateFile = path.join(saved.path, 'state.json');
    const { checksums: _, ...old } = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    fs.writeFileSync(stateFile, JSON.stringify(old, null, 2));
    fs.rmSync(path.join(saved.path, 'state.sha256'));
    const loaded = await loadCheckpoint(dir);
    loaded.model.dispose();
    disposeOptimizer(loaded.optimizer);
    assert.match(loaded.recovered!, /state\.json records no checksums \(a checkpoint of an older version\): its files were not verified/);
    const evaluated = await loadModelFromDir(dir);
    evaluated.model.dispose();
    assert.match(evaluated.note!, /records no checksums .*: evaluated the model unverified/);
  });
});

describe('a damaged latest.json is ours to replace', () => {
  const outside = path.join(tmp, 'outside.json');
  const damages: [string, (dir: string) => void, RegExp][] = [
    ['invalid JSON', (dir) => fs.writeFileSync(path.join(dir, 'latest.json'), '{"checkpoint": "epo'), /is not valid JSON/],
    ['naming ../..', (dir) => fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify({ format: 'nin-tfjs-checkpoint', checkpoint: '../..' })),
      /names "\.\.\/\.\.", which is not a checkpoint folder name/],
    ['naming an absolute path', (dir) => fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify({ format: 'nin-tfjs-checkpoint', checkpoint: '/etc' })),
      /names "\/etc", which is not a checkpoint folder name/],
    ['a symbolic link out of the folder', (dir) => {
      fs.writeFileSync(outside, JSON.stringify({ format: 'nin-tfjs-checkpoint', checkpoint: 'epoch-0001' }));
      fs.rmSync(path.join(dir, 'latest.json'));
      fs.symlinkSync(outside, path.join(dir, 'latest.json'));
    }, /latest\.json is a symbolic link/],
    ['a FIFO', (dir) => {
      fs.rmSync(path.join(dir, 'latest.json'));
      execFileSync('mkfifo', [path.join(dir, 'latest.json')]);
    }, /latest\.json is a FIFO \(named pipe\), not a regular file/],
  ];
  for (const [what, damage, why] of damages) {
    test(`latest.json ${what}: the resume falls back, trains, and its save replaces the pointer`, async () => {
      const dir = freshDir();
      await saveCheckpoint(dir, model, contents(1));
      damage(dir);
      const before = fs.existsSync(outside) ? fs.readFileSync(outside, 'utf8') : undefined;
      const found = latestCheckpoint(dir);
      assert.equal(found.name, 'epoch-0001');
      assert.match(found.recovered!, why);
      const loaded = await loadCheckpoint(found);
      loaded.model.dispose();
      disposeOptimizer(loaded.optimizer);
      // ... an epoch later:
      const saved = await saveCheckpoint(dir, model, contents(2));
      assert.equal(saved.name, 'epoch-0002');
      const latest = path.join(dir, 'latest.json');
      assert.ok(fs.lstatSync(latest).isFile(), 'a regular file again');
      assert.equal(JSON.parse(fs.readFileSync(latest, 'utf8')).checkpoint, 'epoch-0002');
      if (before !== undefined) assert.equal(fs.readFileSync(outside, 'utf8'), before, 'the link\'s target is untouched');
      assert.deepEqual(fs.readdirSync(dir).sort(), ['epoch-0002', 'latest.json']);
    });
  }

  test('a symbolic link left as latest.json.tmp-PID is removed, never written through', async () => {
    const dir = freshDir();
    await saveCheckpoint(dir, model, contents(1));
    const target = path.join(tmp, 'victim.txt');
    fs.writeFileSync(target, 'mine');
    fs.symlinkSync(target, path.join(dir, `latest.json.tmp-${process.pid}`));
    await saveCheckpoint(dir, model, contents(2));
    assert.equal(fs.readFileSync(target, 'utf8'), 'mine');
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')).checkpoint, 'epoch-0002');
  });

  test('a directory named latest.json is refused before any training, in one line', async () => {
    const dir = freshDir();
    await saveCheckpoint(dir, model, contents(1));
    fs.rmSync(path.join(dir, 'latest.json'));
    fs.mkdirSync(path.join(dir, 'latest.json'));
    assert.throws(() => latestCheckpoint(dir), (err) => oneLine(err, /latest\.json is a directory, .*; move it out of/));
  });
});

/** A run opened with `options`, whichever door lib/training/run.ts has (TrainingRun.open, or planRun). */
function openRun(options: Record<string, unknown>): { release(): void } {
  const m = runModule as unknown as Record<string, unknown>;
  const TrainingRun = m.TrainingRun as { open(o: unknown): { release(): void } } | undefined;
  if (TrainingRun) return TrainingRun.open(options);
  return (m.planRun as (o: unknown) => { release(): void })(options);
}
const runOptions = (dir: string, resume: string) => ({
  train: { numEpochs: 3, batchSize: 8, resize: 67, seed: 7 }, checkpointDir: dir, resume,
});

describe('the folder of a run, not a checkpoint folder', () => {
  test('checkpointFolderKind tells a checkpoint folder from the folder runs save into', async () => {
    const dir = freshDir();
    await saveCheckpoint(dir, model, contents(1));
    assert.equal(checkpointFolderKind(path.join(dir, 'epoch-0001')), 'checkpoint');
    assert.equal(checkpointFolderKind(path.join(dir, 'epoch-0009')), 'checkpoint', 'named like one, beside latest.json');
    assert.equal(checkpointFolderKind(dir), 'run');
    assert.equal(checkpointFolderKind(path.join(tmp, 'nothing-here')), 'missing');
    fs.mkdirSync(path.join(tmp, 'empty'), { recursive: true });
    assert.equal(checkpointFolderKind(path.join(tmp, 'empty')), 'other');
    assert.equal(checkRunFolder(dir), dir);
  });

  test('resume (or a fresh run) with a checkpoint folder as checkpointDir: one line saying to pass its parent; no lock left', async () => {
    const dir = freshDir();
    await saveCheckpoint(dir, model, contents(1));
    const inner = path.join(dir, 'epoch-0001');
    for (const resume of ['always', 'never', 'auto']) {
      assert.throws(() => openRun(runOptions(inner, resume)), (err) => oneLine(err,
        new RegExp(`^${inner} is a checkpoint folder itself, not the folder a run saves its checkpoints in; to resume from it, ` +
          `pass its parent ${dir} as checkpointDir`)));
      assert.ok(!fs.existsSync(path.join(inner, LOCK_FILE)) && !fs.existsSync(path.join(dir, LOCK_FILE)), 'no nin.lock');
    }
    assert.throws(() => checkRunFolder(''), (err) => oneLine(err, /^checkpointDir must be a directory path, got ""$/));
  });

  test('an empty model directory is refused in one line', async () => {
    await assert.rejects(loadModelFromDir(''), (err) => oneLine(err, /^modelDir must be a directory path, got ""$/));
  });

  test('a resume refused for a FIFO in its checkpoint releases the lock', async () => {
    const dir = freshDir();
    await saveCheckpoint(dir, model, contents(1));
    const weights = path.join(dir, 'epoch-0001', 'weights.bin');
    fs.rmSync(weights);
    execFileSync('mkfifo', [weights]);
    assert.throws(() => openRun(runOptions(dir, 'always')), (err) => oneLine(err, /weights\.bin is a FIFO \(named pipe\), not a regular file/));
    assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)), 'no nin.lock left behind');
  });
});

/**
 * Runs `body` (JavaScript, with `lib` the compiled library folder) in a child process that is
 * killed after 20 s, and returns what it printed: a read that blocks on a FIFO fails the test
 * instead of hanging it.
 */
function inChild(body: string): string {
  const lib = path.resolve(__dirname, '../../lib');
  const r = spawnSync(process.execPath, ['-e', `const lib = ${JSON.stringify(lib)};\n${body}`], { timeout: 20_000, encoding: 'utf8' });
  assert.equal(r.signal, null, `the child hung and was killed: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('a FIFO as latest.json, state.json, model.json, weights.bin, optimizer.bin, a data file or nin.lock is refused, never read', async () => {
  const { config, optimizer } = steppedMomentum();
  const dirs: Record<string, string> = {};
  try {
    for (const file of ['state.json', 'model.json', 'weights.bin', 'optimizer.bin']) {
      const dir = freshDir();
      await saveCheckpoint(dir, model, contents(1, config), optimizer);
      const target = path.join(dir, 'epoch-0001', file);
      fs.rmSync(target);
      execFileSync('mkfifo', [target]);
      dirs[file] = dir;
    }
  } finally {
    disposeOptimizer(optimizer);
  }
  const data = path.join(tmp, 'fifo-data');
  fs.mkdirSync(data);
  execFileSync('mkfifo', [path.join(data, 'train-images-idx3-ubyte')]);
  const lockDir = path.join(tmp, 'fifo-lock');
  fs.mkdirSync(lockDir);
  execFileSync('mkfifo', [path.join(lockDir, LOCK_FILE)]);
  const out = inChild(`
    const { loadCheckpoint, loadModelFromDir } = require(lib + '/storage/checkpoint');
    const { readIdxFile } = require(lib + '/storage/idxFile');
    const { locateFashionMnist, resolveDataConfig } = require(lib + '/storage/fashionMnistFiles');
    const { FolderLock } = require(lib + '/storage/folderLock');
    const dirs = ${JSON.stringify(dirs)};
    const said = [];
    const attempt = async (what, fn) => {
      try { await fn(); said.push(what + ': no error'); } catch (err) { said.push(what + ': ' + err.name + ': ' + err.message); }
    };
    (async () => {
      for (const [file, dir] of Object.entries(dirs)) {
        await attempt('resume ' + file, () => loadCheckpoint(dir));
        await attempt('eval ' + file, () => loadModelFromDir(dir));
      }
      await attempt('idx', () => readIdxFile(${JSON.stringify(path.join(data, 'train-images-idx3-ubyte'))}));
      await attempt('data', () => locateFashionMnist(resolveDataConfig({ dataDir: ${JSON.stringify(data)} })));
      await attempt('lock', () => FolderLock.acquire(${JSON.stringify(lockDir)}));
      process.stdout.write(JSON.stringify(said));
    })();
  `);
  const said = JSON.parse(out) as string[];
  const line = (what: string) => said.find((s) => s.startsWith(`${what}: `))!;
  for (const file of ['state.json', 'model.json', 'weights.bin', 'optimizer.bin']) {
    const fifo = new RegExp(`ConfigError|FileError`);
    assert.match(line(`resume ${file}`), fifo);
    assert.match(line(`resume ${file}`), new RegExp(`${file.replace('.', '\\.')} is a FIFO \\(named pipe\\), not a regular file`));
    if (file !== 'optimizer.bin') {
      assert.match(line(`eval ${file}`), /Error: /, `eval ${file} is refused`);
      assert.doesNotMatch(line(`eval ${file}`), /no error/);
    }
  }
  assert.match(line('idx'), /train-images-idx3-ubyte is a FIFO \(named pipe\), not a regular file; check that it is a readable regular file, or set dataDir/);
  assert.match(line('data'), /train-images-idx3-ubyte \(a FIFO \(named pipe\)\), in Fashion-MNIST directory .* \(from dataDir\), is not a regular file/);
  assert.match(line('lock'), /is in use by another run \(a run whose lock file cannot be read\)/);
  said.forEach((s) => assert.ok(!s.includes('\n'), `one line: ${s}`));
});

test('the lock file and its folder are fsynced when the lock is taken', () => {
  const dir = path.join(tmp, 'fsync-lock');
  fs.mkdirSync(dir);
  const synced: string[] = [];
  const real = nodeFs.fsyncSync;
  (nodeFs as unknown as Record<string, unknown>).fsyncSync = (fd: number) => {
    synced.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
    return real(fd);
  };
  let lock: FolderLock;
  try {
    lock = FolderLock.acquire(dir);
  } finally {
    (nodeFs as unknown as Record<string, unknown>).fsyncSync = real;
  }
  lock.release();
  const real2 = fs.realpathSync(dir);
  assert.ok(synced.includes(path.join(real2, LOCK_FILE)), `the lock file: ${synced.join(', ')}`);
  assert.ok(synced.includes(real2), `its folder: ${synced.join(', ')}`);
});
