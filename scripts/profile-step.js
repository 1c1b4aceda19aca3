#!/usr/bin/env node
/**
 * Where a training step's time goes: runs `--steps` steps of the chapter's NiN on random data
 * (after one untimed step) under tfjs's per-kernel timing (`tf.profile`) and prints, per layer
 * and pass, the median milliseconds per step, then the step's wall time and what is left for
 * JavaScript between the kernels. The tables of docs/performance.md and
 * docs/time-to-accuracy.md come from it.
 *
 *   node scripts/profile-step.js [--resize 67] [--batch-size 128] [--optimizer adam] [--steps 5] [--json]
 *
 * Kernels are named by tfjs (the project's fused kernels by lib/kernels/kernelNames.ts) and
 * grouped with the shapes of their inputs, so the 5×5 layer's three passes appear as three
 * lines. Run it on an idle machine: it times, it does not compare.
 */
'use strict';
const { parseArgs } = require('node:util');
const tf = require('@tensorflow/tfjs-core');
const nin = require('../dist/lib');

function usage(message) {
  process.stderr.write(`profile-step: ${message}\n`);
  process.exit(2);
}

function readOptions() {
  try {
    return parseArgs({
      options: {
        resize: { type: 'string', default: '67' }, 'batch-size': { type: 'string', default: '128' },
        optimizer: { type: 'string', default: 'adam' }, steps: { type: 'string', default: '5' }, json: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    return usage(err.message);
  }
}

const opts = readOptions();

function positive(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) usage(`--${name} must be a positive whole number, got ${text}`);
  return n;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Sums each kernel's time per (name, input shapes) within one profiled step. Only registered
 * kernels count: tf.profile also lists custom operations (a custom gradient's `forward`), whose
 * time is that of the kernels they call.
 */
function byKernel(info, backendName) {
  const sums = new Map();
  for (const k of info.kernels) {
    if (tf.getKernel(k.name, backendName) === undefined) continue;
    const key = `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(' ')}`;
    sums.set(key, (sums.get(key) ?? 0) + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0));
  }
  return sums;
}

async function main() {
  const resize = positive('resize', opts.resize);
  const batchSize = positive('batch-size', opts['batch-size']);
  const steps = positive('steps', opts.steps);
  try { // the library's own checks, naming the flags
    nin.oneOf('--optimizer', opts.optimizer, nin.OPTIMIZERS);
    nin.checkInputSize('--resize', resize);
  } catch (err) {
    usage(err.message);
  }
  const backend = await nin.selectBackend();
  const model = nin.nin({ inputSize: resize, seed: 0 });
  const optimizer = nin.makeOptimizer({ optimizer: opts.optimizer, lr: opts.optimizer === 'adam' ? 0.002 : 0.1, momentum: 0 });
  const x = tf.randomUniform([batchSize, resize, resize, 1]);
  const y = tf.tensor1d(Array.from({ length: batchSize }, (_, i) => i % 10), 'int32');
  const step = () => nin.sgdStep(model, optimizer, x, y, batchSize);
  step();
  const perStep = [];
  const walls = [];
  for (let s = 0; s < steps; s++) {
    const t = performance.now();
    const info = await tf.profile(step);
    walls.push(performance.now() - t);
    perStep.push(byKernel(info, tf.getBackend()));
  }
  const rows = [...perStep[0].keys()].map((key) => ({ kernel: key, ms: median(perStep.map((m) => m.get(key) ?? 0)) }))
    .sort((a, b) => b.ms - a.ms);
  const kernelMs = rows.reduce((s, r) => s + r.ms, 0);
  // tf.profile's own bookkeeping lengthens the wall time a little; time plain steps too.
  const plain = [];
  for (let s = 0; s < steps; s++) { const t = performance.now(); step(); plain.push(performance.now() - t); }
  const result = { backend: backend.description ?? backend.name, resize, batchSize, optimizer: opts.optimizer, steps,
    stepMs: median(plain), profiledStepMs: median(walls), kernelMs, rows };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    console.log(`${result.backend}; ${resize} px, batch ${batchSize}, ${opts.optimizer}; medians of ${steps} steps`);
    console.log(`step ${result.stepMs.toFixed(1)} ms (${(batchSize * 1000 / result.stepMs).toFixed(0)} images/s); ` +
      `kernels ${kernelMs.toFixed(1)} ms of a profiled ${result.profiledStepMs.toFixed(1)} ms`);
    for (const r of rows.filter((r) => r.ms >= 0.05)) console.log(`${r.ms.toFixed(2).padStart(8)} ms  ${r.kernel}`);
  }
  x.dispose(); y.dispose(); model.dispose(); nin.disposeOptimizer(optimizer);
}

main().catch((err) => { process.stderr.write(`profile-step: ${err.message}\n`); process.exit(1); });
