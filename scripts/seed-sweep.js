#!/usr/bin/env node
/**
 * Trains one recipe over several seeds on the full Fashion-MNIST training set and prints one
 * JSON line per seed: steps until the loss leaves 2.2 (mean of the last 20 steps), the loss
 * and the number of silent classes (see silentClasses) every 100 steps, and each completed
 * epoch's result. The seed tables of docs/recipe.md come from it.
 *
 *   node scripts/seed-sweep.js --seeds 0-9 --train '{"optimizer":"adam","lr":0.001,...}' \
 *     [--model '{"init":"he"}'] [--max-steps 300] [--train-limit N] [--out sweep.jsonl]
 *
 * --max-steps stops each run after that many steps (a quick look at the plateau), with the
 * schedule still that of the whole run; --train-limit trains on the first N training images. The rounding is whatever the environment sets
 * (NIN_NATIVE, OPENBLAS_NUM_THREADS); it is recorded in each line.
 */
'use strict';
const fs = require('node:fs');
const { parseArgs } = require('node:util');
const nin = require('../dist/lib');

function seedList(text) {
  const [a, b] = text.split('-').map(Number);
  return b === undefined ? text.split(',').map(Number) : Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

async function runSeed(seed, trainConfig, modelConfig, data, maxSteps, trainLimit) {
  const controller = new AbortController();
  const losses = [];
  const silentEvery100 = [];
  let left;
  let model;
  let config;
  const start = Date.now();
  const result = await nin.trainNin({ train: { ...trainConfig, seed }, model: modelConfig, trainLimit }, data, {
    onStart: (run, done, trained) => { model = trained; config = run.config; },
    onBatchEnd: ({ loss }) => {
      losses.push(loss);
      const recent = losses.slice(-20);
      if (left === undefined && recent.length === 20 && recent.reduce((s, x) => s + x, 0) / 20 < 2.2) left = losses.length;
      if (losses.length % 100 === 0) silentEvery100.push(silentClasses(model, data.test, config.resize).length);
      if (maxSteps > 0 && losses.length >= maxSteps) controller.abort();
    },
  }, controller.signal).catch((err) => ({ history: { epochs: [] }, error: err.message }));
  const history = { epochs: result.history.epochs, error: result.error };
  const deadClasses = model && !result.error ? silentClasses(model, data.test, config.resize) : [];
  result.model?.dispose();
  return {
    seed, stepsToLeave2_2: left ?? null, steps: losses.length,
    lossEvery100: losses.filter((_, i) => (i + 1) % 100 === 0).map((x) => Number(x.toFixed(4))),
    silentEvery100,
    epochs: history.epochs.map((e) => ({ epoch: e.epoch, trainLoss: e.trainLoss, trainAcc: e.trainAcc, testAcc: e.testAcc })),
    deadClasses, error: history.error, seconds: (Date.now() - start) / 1000,
  };
}

/** Classes whose score is 0 for every one of the first 512 test images: dead channels of the last block. */
function silentClasses(model, test, resize) {
  const tf = require('@tensorflow/tfjs-core');
  const first = nin.firstBatch(test, 512, resize);
  const max = tf.tidy(() => tf.max(nin.logitsOf(model, first.xs), 0));
  const dead = Array.from(max.dataSync()).flatMap((m, k) => (m === 0 ? [k] : []));
  tf.dispose([max, first.xs, first.ys]);
  return dead;
}

async function main() {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '0-9' }, train: { type: 'string', default: '{}' }, model: { type: 'string', default: '{}' },
      'max-steps': { type: 'string', default: '0' }, 'train-limit': { type: 'string' }, out: { type: 'string' },
      label: { type: 'string', default: '' },
    },
  });
  const backend = await nin.selectBackend();
  const data = await nin.loadFashionMnist();
  const trainConfig = JSON.parse(values.train);
  const modelConfig = JSON.parse(values.model);
  const rounding = `${backend.description}; OPENBLAS_NUM_THREADS=${process.env.OPENBLAS_NUM_THREADS ?? 'unset'}`;
  for (const seed of seedList(values.seeds)) {
    const trainLimit = values['train-limit'] === undefined ? undefined : Number(values['train-limit']);
    const r = await runSeed(seed, trainConfig, modelConfig, data, Number(values['max-steps']), trainLimit);
    const line = JSON.stringify({ label: values.label, train: trainConfig, model: modelConfig, rounding, ...r });
    process.stdout.write(`${line}\n`);
    if (values.out) fs.appendFileSync(values.out, `${line}\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`seed-sweep: ${err.message}\n`);
  process.exit(1);
});
