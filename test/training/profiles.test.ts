/** lib/training/profiles.ts: which training profile the notebooks run, and why. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseProfile, describeProfile, PROFILES } from '../../lib/training/profiles';
import { resolveTrainConfig } from '../../lib/core/trainConfig';
import { resolveNinConfig } from '../../lib/core/model';
import { ConfigError } from '../../lib/core/validate';
import type { BackendInfo } from '../../lib/kernels/backend';

const wasm: BackendInfo = { name: 'wasm', description: 'wasm (XNNPACK, SIMD, 1 thread)', skipped: [] };
const gpu: BackendInfo = { name: 'tensorflow', description: 'tensorflow (tfjs-node-gpu)', skipped: [] };
const nativeCpu: BackendInfo = { name: 'tensorflow', description: 'tensorflow (tfjs-node)', skipped: [] };

test('a GPU backend gets the chapter\'s full recipe; CPUs get the cpu profile', () => {
  assert.equal(chooseProfile(gpu, {}).name, 'full');
  assert.deepEqual(chooseProfile(gpu, {}).train, resolveTrainConfig({ numEpochs: 5, lr: 0.1, batchSize: 128, resize: 224 }));
  assert.equal(chooseProfile(wasm, {}).name, 'cpu');
  assert.equal(chooseProfile(nativeCpu, {}).name, 'cpu');
  assert.match(chooseProfile(wasm, {}).why, /no GPU backend .*wasm/);
});

test('NIN_PROFILE overrides, and a bad value is a one-line error naming it', () => {
  assert.equal(chooseProfile(wasm, { NIN_PROFILE: 'tiny' }).name, 'tiny');
  assert.equal(chooseProfile(gpu, { NIN_PROFILE: 'cpu' }).name, 'cpu');
  assert.match(chooseProfile(wasm, { NIN_PROFILE: 'full' }).why, /NIN_PROFILE=full/);
  assert.throws(() => chooseProfile(wasm, { NIN_PROFILE: 'huge' }),
    (e: unknown) => e instanceof ConfigError && /NIN_PROFILE must be one of full, cpu, tiny, got "huge"/.test(e.message));
});

test('every profile and exercise budget is a valid training config', () => {
  for (const p of Object.values(PROFILES)) {
    resolveTrainConfig(p.train);
    resolveTrainConfig(p.exercise.train);
    resolveNinConfig(p.model);
    resolveNinConfig(p.exercise.model);
  }
  assert.ok(PROFILES.tiny.trainLimit! <= 512, 'tiny stays tiny');
});

test('the cpu profile keeps a time budget: 20 minutes for the chapter, a minute per exercise run; the others none', () => {
  assert.equal(chooseProfile(wasm, { NIN_PROFILE: 'cpu' }).budgetSeconds, 1200);
  assert.equal(chooseProfile(wasm, { NIN_PROFILE: 'cpu' }).exercise.budgetSeconds, 60);
  for (const name of ['full', 'tiny']) assert.equal(chooseProfile(wasm, { NIN_PROFILE: name }).budgetSeconds, undefined);
});

test('describeProfile says epochs, size, batch, lr and data', () => {
  assert.equal(describeProfile(chooseProfile(wasm, { NIN_PROFILE: 'tiny' })),
    'tiny profile: 2 epochs at 67 px, batch 32, adam lr 0.001 (cosine decay, 4 warm-up steps), he init, 256 training / 128 test examples');
  assert.equal(describeProfile(chooseProfile(wasm, { NIN_PROFILE: 'cpu' })),
    'cpu profile: 2 epochs at 67 px, batch 128, adam lr 0.003 (cosine decay, 100 warm-up steps, class block lifted to 0.5, label smoothing 0.2), he init, class-block bias 0.1, all examples');
  assert.equal(describeProfile({ ...chooseProfile(wasm, { NIN_PROFILE: 'tiny' }), model: {}, train: { numEpochs: 1, resize: 67, batchSize: 8, lr: 0.02, momentum: 0.9 } }),
    'tiny profile: 1 epoch at 67 px, batch 8, sgd lr 0.02 with momentum 0.9, 256 training / 128 test examples');
});
