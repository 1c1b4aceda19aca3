/**
 * The `nin` command line: `nin shapes`, `nin train`, `nin eval`, `nin data`, `nin bench`.
 *
 * Human-readable output goes to stdout, progress to stderr. With `--json` each command
 * prints exactly one JSON object on stdout and nothing else there. Errors are one line on
 * stderr and a non-zero exit; `--debug` adds the stack trace.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import * as cliProgress from 'cli-progress';
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { BACKEND_CHOICES, BackendInfo, selectBackend } from './backend';
import { FashionMnist, loadFashionMnist, numBatches } from './data/fashionMnist';
import { countParams, formatLayerSummary, KernelInit, layerSummary, nin, NIN_DEFAULTS, NinConfig, resolveNinConfig } from './model';
import { BENCH_DEFAULTS, benchmark, resolveBenchConfig } from './bench';
import { disposeOptimizer, makeOptimizer } from './optimizers';
import { EpochResult, PartialEpoch, train, TrainHistory, TrainProgress } from './train';
import { LrSchedule, OptimizerName, resolveTrainConfig, TRAIN_DEFAULTS } from './trainConfig';
import {
  CheckpointState, hasCheckpoint, loadCheckpoint, loadModelFromDir, readCheckpointState, resumeConfigs, saveCheckpoint,
} from './checkpoint';
import { CONSTANT_OUTPUT_WARNING, evaluateModel, formatEvaluation, modelInputSize } from './evaluate';
import { ConfigError } from './validate';
import { DeadNetworkError, DivergedError, UnhealthyError } from './health';

/** Training was stopped by Ctrl-C (after saving what it could): exit 130, like a shell. */
class Interrupted extends Error {
  override name = 'Interrupted';
}

/** The exit status of a process stopped by SIGINT (128 + 2). */
const EXIT_INTERRUPTED = 130;

function intArg(value: string): number {
  if (!/^[+-]?\d+$/.test(value.trim())) throw new InvalidArgumentError('expected an integer.');
  return Number(value);
}

function numberArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError('expected a number.');
  return n;
}

/** Where a command writes; tests pass their own. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether stderr is a terminal (progress bar) or not (plain lines). */
  isTTY: boolean;
}

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stderr.isTTY),
};

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
const fixed = (x: number, digits = 3) => x.toFixed(digits);

function dataSummary(data: FashionMnist) {
  return {
    dir: data.dir, source: data.source, files: data.files,
    train: { count: data.train.count, height: data.train.height, width: data.train.width },
    test: { count: data.test.count, height: data.test.height, width: data.test.width },
  };
}

function backendSummary(b: BackendInfo) {
  return { name: b.name, description: b.description, skipped: b.skipped };
}

async function shapes(opts: { size: number; oneByOne: number; backend?: string; json?: boolean }, io: Io) {
  const backend = await selectBackend(opts.backend);
  const model = nin({ inputSize: opts.size, oneByOneCount: opts.oneByOne });
  const rows = layerSummary(model);
  const total = countParams(model);
  model.dispose();
  if (opts.json) {
    io.out(json({
      command: 'shapes', inputSize: opts.size, oneByOneCount: opts.oneByOne, backend: backend.name,
      layers: rows.map((r) => ({ name: r.name, shape: r.shapeNCHW, shapeNHWC: r.shapeNHWC, params: r.params })),
      totalParams: total,
    }));
    return;
  }
  io.out(`NiN for one ${opts.size}×${opts.size} grey image. Shapes are printed (N, C, H, W) as in the chapter;\n` +
    `tfjs itself stores (N, H, W, C).\n\n${formatLayerSummary(rows)}\n`);
}

async function data(opts: { dataDir?: string; json?: boolean }, io: Io) {
  const d = await loadFashionMnist({ dataDir: opts.dataDir });
  if (opts.json) {
    io.out(json({ command: 'data', verified: true, ...dataSummary(d) }));
    return;
  }
  io.out(`Fashion-MNIST found in ${d.dir} (${d.source})\n` +
    Object.values(d.files).map((f) => `  ${f}\n`).join('') +
    `verified: ${d.train.count} training and ${d.test.count} test images of ` +
    `${d.train.height}×${d.train.width} px, labels 0–9\n`);
}

interface TrainOpts {
  epochs?: number; optimizer?: string; lr?: number; lrSchedule?: string; warmupSteps?: number; init?: string; momentum?: number; batchSize?: number; resize?: number; seed?: number;
  trainLimit?: number; testLimit?: number; backend?: string; dataDir?: string; oneByOne: number; json?: boolean;
  checkpointDir?: string; resume?: boolean;
}

/** How to continue a run saved in `dir`, as a command the user can paste. */
const resumeCommand = (dir: string) => `nin train --resume --checkpoint-dir ${dir}`;

/** "epoch 2 complete" / "epoch 2 complete + 13 steps of epoch 3". */
function describePosition(epochs: number, partial?: PartialEpoch): string {
  const done = epochs === 0 ? 'no epoch complete' : `epoch ${epochs} complete`;
  return partial && partial.steps > 0 ? `${done} + ${partial.steps} step${partial.steps === 1 ? '' : 's'} of epoch ${partial.epoch}` : done;
}

/** Makes sure checkpoints can be written to `dir` before any training time is spent. */
function prepareCheckpointDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    throw new ConfigError(`checkpoint directory ${dir} cannot be created or written ` +
      `(${(err as NodeJS.ErrnoException).code ?? String(err)}); choose another --checkpoint-dir`);
  }
}

/**
 * Stops training cleanly on the first Ctrl-C (after the current step); a second one exits at
 * once. Installed only while training runs; `remove` takes it away again.
 */
function interruptOnSigint(io: Io): { signal: AbortSignal; remove: () => void } {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) {
      io.err('nin: second Ctrl-C: exiting now; the last complete checkpoint stays as it was\n');
      process.exit(EXIT_INTERRUPTED);
    }
    io.err(`${io.isTTY ? '\n' : ''}nin: Ctrl-C: stopping after this step (press again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, remove: () => { process.off('SIGINT', onSigint); } };
}

async function trainCommand(opts: TrainOpts, io: Io, oneByOneGiven: boolean) {
  const checkpointDir = opts.checkpointDir === undefined ? undefined : path.resolve(opts.checkpointDir);
  // Check every option before the slow parts (backend start, data loading) begin.
  let config: ReturnType<typeof resolveTrainConfig>;
  let modelConfig: Partial<NinConfig>;
  let saved: CheckpointState | undefined;
  if (opts.resume) {
    if (checkpointDir === undefined) {
      throw new ConfigError('--resume needs --checkpoint-dir DIR, the folder a run saved its checkpoints in');
    }
    saved = readCheckpointState(checkpointDir).state;
    const given = {
      numEpochs: opts.epochs, lr: opts.lr, batchSize: opts.batchSize, resize: opts.resize, seed: opts.seed,
      oneByOneCount: oneByOneGiven ? opts.oneByOne : undefined, momentum: opts.momentum,
      lrSchedule: opts.lrSchedule as LrSchedule | undefined, optimizer: opts.optimizer as OptimizerName | undefined,
      warmupSteps: opts.warmupSteps, init: opts.init as KernelInit | undefined,
    };
    if (given.optimizer !== undefined) resolveTrainConfig({ optimizer: given.optimizer });
    if (given.lr !== undefined) resolveTrainConfig({ lr: given.lr });
    if (given.numEpochs !== undefined) resolveTrainConfig({ numEpochs: given.numEpochs });
    if (given.momentum !== undefined) resolveTrainConfig({ momentum: given.momentum });
    if (given.lrSchedule !== undefined) resolveTrainConfig({ lrSchedule: given.lrSchedule });
    const resumed = resumeConfigs(saved, given, checkpointDir, FLAGS);
    config = resumed.train;
    modelConfig = resumed.model;
  } else {
    config = resolveTrainConfig({
      numEpochs: opts.epochs, optimizer: opts.optimizer as OptimizerName | undefined, lr: opts.lr,
      lrSchedule: opts.lrSchedule as LrSchedule | undefined, warmupSteps: opts.warmupSteps, momentum: opts.momentum,
      batchSize: opts.batchSize, resize: opts.resize, seed: opts.seed,
    });
    modelConfig = resolveNinConfig({
      inputSize: config.resize, oneByOneCount: opts.oneByOne, init: opts.init as KernelInit | undefined, seed: config.seed,
    });
    if (checkpointDir !== undefined && hasCheckpoint(checkpointDir)) {
      throw new ConfigError(`${checkpointDir} already holds a checkpoint; add --resume to continue it, ` +
        'or choose another --checkpoint-dir (or delete that one) to start afresh');
    }
  }
  if (checkpointDir !== undefined) prepareCheckpointDir(checkpointDir);

  const backend = await selectBackend(opts.backend);
  const d = await loadFashionMnist({ dataDir: opts.dataDir, trainLimit: opts.trainLimit, testLimit: opts.testLimit });
  if (saved && (saved.data.trainCount !== d.train.count || saved.data.testCount !== d.test.count)) {
    throw new ConfigError(`cannot resume from ${checkpointDir}: it was trained on ${saved.data.trainCount} training / ` +
      `${saved.data.testCount} test examples, this data has ${d.train.count} / ${d.test.count}; pass the same ` +
      '--data-dir, --train-limit and --test-limit as the first run');
  }

  let model: tfl.LayersModel;
  let optimizer: tf.Optimizer;
  let progress: TrainProgress | undefined;
  if (saved) {
    const loaded = await loadCheckpoint(checkpointDir!, config);
    model = loaded.model;
    optimizer = loaded.optimizer;
    saved = loaded.state;
    progress = { epochs: saved.history, partial: saved.partial };
  } else {
    model = nin(modelConfig);
    optimizer = makeOptimizer(config);
  }
  if (!opts.json) {
    io.out(`backend: ${backend.description}\n`);
    for (const s of backend.skipped) io.out(`  (skipped ${s})\n`);
    io.out(`data: ${d.dir} (${d.source}), ${d.train.count} training / ${d.test.count} test examples\n`);
    if (saved) {
      io.out(`resuming from ${checkpointDir} (${describePosition(saved.epochsCompleted, saved.partial)})` +
        `${saved.train.lr !== config.lr ? `, lr ${saved.train.lr} → ${config.lr}` : ''}` +
        `${saved.backend && saved.backend !== backend.description ? `; trained so far on ${saved.backend}, so the numbers ` +
          'will not match a run on one backend to the last bit' : ''}\n`);
    }
    io.out(`training NiN at ${config.resize}×${config.resize} px: ${config.numEpochs} ` +
      `epoch${config.numEpochs === 1 ? '' : 's'}, ${config.optimizer} lr ${config.lr}` +
      `${config.lrSchedule === 'constant' ? '' : ` (${config.lrSchedule} schedule)`}` +
      `${config.warmupSteps > 0 ? `, ${config.warmupSteps} warm-up steps` : ''}` +
      `${resolveNinConfig(modelConfig).init === 'glorot' ? '' : `, ${resolveNinConfig(modelConfig).init} init`}` +
      `${config.momentum > 0 ? `, momentum ${config.momentum}` : ''}, batch ${config.batchSize}\n`);
  }

  const steps = numBatches(d.train.count, config.batchSize);
  const bar = io.isTTY ? new cliProgress.SingleBar({
    format: 'epoch {epoch} |{bar}| {value}/{total} steps | loss {loss} | {eta_formatted} left',
    stream: process.stderr, hideCursor: true, clearOnComplete: true,
  }, cliProgress.Presets.shades_classic) : undefined;
  const report = (r: EpochResult) =>
    `epoch ${r.epoch}/${config.numEpochs}  loss ${fixed(r.trainLoss, 4)}  train acc ${fixed(r.trainAcc)}  ` +
    `test acc ${fixed(r.testAcc)}  ${r.examplesPerSec.toFixed(1)} examples/sec  ${r.seconds.toFixed(1)} s\n`;
  const contents = (h: TrainHistory, partial?: PartialEpoch) => ({
    history: h.epochs, partial, train: config, model: { ...resolveNinConfig(modelConfig) },
    data: { trainCount: d.train.count, testCount: d.test.count }, backend: backend.description,
  });
  /** The last checkpoint written or resumed from, in words; undefined while there is none. */
  let lastSaved = saved ? describePosition(saved.epochsCompleted, saved.partial) : undefined;

  let history: TrainHistory;
  const sigint = interruptOnSigint(io);
  try {
    history = await train(model, d, config, {
      onBatchEnd: ({ epoch, batch, loss }) => {
        if (!bar) {
          // Not a terminal (a log file, CI): a plain line on stderr about every tenth of an epoch.
          const every = Math.max(1, Math.round(steps / 10));
          if ((batch + 1) % every === 0 && batch + 1 < steps) {
            io.err(`epoch ${epoch}: step ${batch + 1}/${steps}, loss ${fixed(loss)}\n`);
          }
          return;
        }
        if (!bar.isActive) bar.start(steps, batch, { epoch, loss: fixed(loss) });
        bar.update(batch + 1, { epoch, loss: fixed(loss) });
        if (batch + 1 === steps) bar.stop();
      },
      onEpochEnd: async (r, h) => {
        bar?.stop();
        let line = report(r);
        if (checkpointDir !== undefined) {
          const c = await saveCheckpoint(checkpointDir, model, contents(h), optimizer);
          lastSaved = describePosition(r.epoch);
          line = `${line.trimEnd()}  (saved ${c.name})\n`;
        }
        if (!opts.json) io.out(line);
        else if (!bar) io.err(line); // progress for logs, kept off stdout
      },
    }, { resume: progress, optimizer, signal: sigint.signal });
  } catch (err) {
    model.dispose();
    disposeOptimizer(optimizer);
    if (err instanceof UnhealthyError && checkpointDir !== undefined) {
      const kept = lastSaved !== undefined
        ? `the last good checkpoint (${lastSaved}) stays in ${checkpointDir}; resume from it with ` +
          `\`${resumeCommand(checkpointDir)} --lr ${Number((config.lr / 10).toPrecision(3))}\``
        : 'no checkpoint was saved (no epoch completed)';
      const Same = err instanceof DeadNetworkError ? DeadNetworkError : DivergedError;
      throw new Same(`${err.message}; ${kept}`, err.position);
    }
    throw err;
  } finally {
    sigint.remove();
    bar?.stop();
  }
  try {
    if (history.interrupted) {
      const stop = history.interrupted;
      const where = stop.steps === 0 ? `stopped before epoch ${stop.epoch}` : `stopped at epoch ${stop.epoch}, step ${stop.steps} of ${steps}`;
      if (checkpointDir === undefined) {
        throw new Interrupted(`interrupted: ${where}; nothing saved (train with --checkpoint-dir DIR to keep progress)`);
      }
      const c = await saveCheckpoint(checkpointDir, model, contents(history, stop), optimizer);
      throw new Interrupted(`interrupted: ${where}; saved ${describePosition(history.epochs.length, stop)} in ` +
        `${c.path}; resume with \`${resumeCommand(checkpointDir)}\``);
    }
  } finally {
    model.dispose();
    disposeOptimizer(optimizer);
  }
  const last = history.epochs[history.epochs.length - 1];
  const final = {
    loss: last.trainLoss, trainAcc: last.trainAcc, testAcc: last.testAcc,
    examplesPerSec: history.epochs.reduce((s, e) => s + e.examplesPerSec, 0) / history.epochs.length,
  };
  if (opts.json) {
    io.out(json({
      command: 'train', backend: backendSummary(backend), data: dataSummary(d),
      config: { train: config, model: modelConfig }, history: history.epochs, final,
      ...(checkpointDir !== undefined ? {
        checkpoint: { dir: checkpointDir, resumedFrom: saved ? { epochsCompleted: saved.epochsCompleted, steps: saved.steps } : null },
      } : {}),
    }));
    return;
  }
  io.out(`loss ${fixed(final.loss)}, train acc ${fixed(final.trainAcc)}, test acc ${fixed(final.testAcc)}\n` +
    `${final.examplesPerSec.toFixed(1)} examples/sec on ${backend.name}\n`);
}

interface EvalOpts { model: string; dataDir?: string; testLimit?: number; backend?: string; batchSize?: number; json?: boolean }

async function evalCommand(opts: EvalOpts, io: Io) {
  if (opts.batchSize !== undefined && (!Number.isInteger(opts.batchSize) || opts.batchSize < 1)) {
    throw new ConfigError(`--batch-size must be an integer >= 1, got ${opts.batchSize}`);
  }
  const dir = path.resolve(opts.model);
  if (!fs.existsSync(dir)) {
    throw new ConfigError(`model directory ${dir} does not exist; pass the --checkpoint-dir of a \`nin train\` run ` +
      'or a folder with model.json and weights.bin');
  }
  const backend = await selectBackend(opts.backend);
  const loaded = await loadModelFromDir(dir);
  try {
    const resize = modelInputSize(loaded.model);
    const d = await loadFashionMnist({ dataDir: opts.dataDir, trainLimit: 1, testLimit: opts.testLimit });
    const e = evaluateModel(loaded.model, d.test, { batchSize: opts.batchSize });
    const checkpoint = loaded.state ? { epochsCompleted: loaded.state.epochsCompleted, steps: loaded.state.steps } : null;
    if (e.constantOutput) io.err(`nin: warning: ${CONSTANT_OUTPUT_WARNING}\n`);
    if (opts.json) {
      io.out(json({
        command: 'eval', backend: backendSummary(backend), model: { path: loaded.path, inputSize: resize, checkpoint },
        data: { dir: d.dir, source: d.source, split: 'test', count: d.test.count },
        accuracy: e.accuracy, correct: e.correct, count: e.count, perClass: e.perClass,
        ...(e.constantOutput ? { warning: CONSTANT_OUTPUT_WARNING } : {}),
        confusionMatrix: e.confusion, confusionMatrixAxes: { rows: 'true class', columns: 'predicted class' },
      }));
      return;
    }
    io.out(`backend: ${backend.description}\nmodel: ${loaded.path} (${resize}×${resize} px input` +
      `${checkpoint ? `, ${describePosition(checkpoint.epochsCompleted, loaded.state!.partial)}` : ''})\n` +
      `data: ${d.dir} (${d.source}), ${d.test.count} test examples\n\n${formatEvaluation(e)}`);
  } finally {
    loaded.model.dispose();
  }
}

async function bench(opts: { resize?: number; batchSize?: number; steps?: number; backend?: string; json?: boolean }, io: Io) {
  const config = resolveBenchConfig({ resize: opts.resize, batchSize: opts.batchSize, steps: opts.steps });
  const backend = await selectBackend(opts.backend);
  if (!opts.json) {
    io.out(`backend: ${backend.description}\nNiN at ${config.resize} px, batch ${config.batchSize}, ` +
      `random data; median of ${config.steps} steps after one warm-up\n`);
  }
  const r = benchmark(config);
  if (opts.json) {
    io.out(`${JSON.stringify({ ...r, backend: backend.description })}\n`);
    return;
  }
  io.out(`forward: ${r.forward_img_s} images/s\ntraining step: ${r.train_img_s} images/s\n` +
    `peak RSS: ${r.peak_rss_mb} MB\n`);
}

/** Builds the commander program; `run` is what each action calls to do its work. */
function program(io: Io, run: (work: () => Promise<void>) => Promise<void>): Command {
  const backendOption = () => new Option('--backend <name>', 'tfjs backend (default: $NIN_BACKEND, else auto)')
    .choices(BACKEND_CHOICES as unknown as string[]);
  const cmd = new Command('nin')
    .description('Network in Network (Dive into Deep Learning, chapter NiN) on TensorFlow.js')
    .option('--debug', 'print stack traces on errors')
    .configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      // Commander's own one-line errors (unknown flag, bad number) in the same form as ours.
      outputError: (text, write) => write(text.replace(/^error: /, 'nin: ')),
    })
    .exitOverride()
    .showHelpAfterError(false);

  cmd.command('shapes')
    .description("print each layer's output shape and parameters for one image")
    .option('--size <px>', 'input image side', intArg, NIN_DEFAULTS.inputSize)
    .option('--one-by-one <n>', 'follow-up 1×1 convolutions per block (0–3)', intArg, NIN_DEFAULTS.oneByOneCount)
    .addOption(backendOption())
    .option('--json', 'print one JSON object')
    .action((opts) => run(() => shapes(opts, io)));

  cmd.command('train')
    .description('train NiN on Fashion-MNIST and report loss, accuracy and speed')
    .option('--epochs <n>', `passes over the training set (default ${TRAIN_DEFAULTS.numEpochs})`, intArg)
    .option('--optimizer <name>', `sgd (the chapter's), or adam: try --lr 0.001 with it (default ${TRAIN_DEFAULTS.optimizer})`)
    .option('--lr <x>', `learning rate (default ${TRAIN_DEFAULTS.lr})`, numberArg)
    .option('--lr-schedule <name>', `constant, or cosine: decay from --lr towards 0 over the run (default ${TRAIN_DEFAULTS.lrSchedule})`)
    .option('--warmup-steps <n>', `steps of linear learning-rate warm-up before the schedule (default ${TRAIN_DEFAULTS.warmupSteps})`, intArg)
    .option('--init <name>', `kernel initialisation: glorot (d2l's) or he, made for ReLU (default ${NIN_DEFAULTS.init})`)
    .option('--momentum <m>', `SGD momentum in [0, 1), 0 for plain SGD; sgd only (default ${TRAIN_DEFAULTS.momentum})`, numberArg)
    .option('--batch-size <n>', `examples per step (default ${TRAIN_DEFAULTS.batchSize})`, intArg)
    .option('--resize <px>', `image side fed to the network, at least 67 (default ${TRAIN_DEFAULTS.resize})`, intArg)
    .option('--train-limit <n>', 'use only the first n training examples', intArg)
    .option('--test-limit <n>', 'use only the first n test examples', intArg)
    .option('--one-by-one <n>', 'follow-up 1×1 convolutions per block (0–3)', intArg, NIN_DEFAULTS.oneByOneCount)
    .option('--seed <n>', `seed for initialisation and shuffling (default ${TRAIN_DEFAULTS.seed})`, intArg)
    .option('--data-dir <dir>', 'directory with the four Fashion-MNIST files')
    .addOption(backendOption())
    .option('--checkpoint-dir <dir>', 'save a checkpoint there after every epoch (and on Ctrl-C)')
    .option('--resume', 'continue from the last checkpoint in --checkpoint-dir')
    .option('--json', 'print one JSON object (config, per-epoch history, final metrics)')
    .action((opts, command: Command) =>
      run(() => trainCommand(opts, io, command.getOptionValueSource('oneByOne') !== 'default')));

  cmd.command('eval')
    .description('evaluate a saved model on the test set: accuracy, per-class accuracy, confusion matrix')
    .requiredOption('--model <dir>', 'a checkpoint directory (its latest checkpoint) or a folder with model.json')
    .option('--data-dir <dir>', 'directory with the four Fashion-MNIST files')
    .option('--test-limit <n>', 'use only the first n test examples', intArg)
    .option('--batch-size <n>', 'examples per forward pass (default 256)', intArg)
    .addOption(backendOption())
    .option('--json', 'print one JSON object')
    .action((opts) => run(() => evalCommand(opts, io)));

  cmd.command('bench')
    .description('forward and training-step throughput of NiN on random data')
    .option('--resize <px>', `input side (default ${BENCH_DEFAULTS.resize})`, intArg)
    .option('--batch-size <n>', `images per step (default ${BENCH_DEFAULTS.batchSize})`, intArg)
    .option('--steps <n>', `timed steps per figure (default ${BENCH_DEFAULTS.steps})`, intArg)
    .addOption(backendOption())
    .option('--json', 'print one JSON object, with the reference script\'s field names')
    .action((opts) => run(() => bench(opts, io)));

  cmd.command('data')
    .description('find Fashion-MNIST (downloading it if needed) and check its four files')
    .option('--data-dir <dir>', 'directory with the four Fashion-MNIST files')
    .option('--json', 'print one JSON object')
    .action((opts) => run(() => data(opts, io)));
  return cmd;
}

/** Config field → the flag that sets it, so errors name what the user typed. */
const FLAGS: Record<string, string> = {
  numEpochs: '--epochs', lr: '--lr', batchSize: '--batch-size', resize: '--resize', seed: '--seed',
  trainLimit: '--train-limit', testLimit: '--test-limit', oneByOneCount: '--one-by-one', steps: '--steps',
  dataDir: '--data-dir', backend: '--backend', checkpointDir: '--checkpoint-dir', momentum: '--momentum',
  lrSchedule: '--lr-schedule', optimizer: '--optimizer', warmupSteps: '--warmup-steps', init: '--init',
};

function inFlagTerms(message: string): string {
  const m = /^(\w+) must /.exec(message);
  return m && FLAGS[m[1]] ? FLAGS[m[1]] + message.slice(m[1].length) : message;
}

/** Runs the CLI on `argv` (node-style: [node, script, ...args]); resolves to the exit code. */
export async function main(argv: string[] = process.argv, io: Io = processIo): Promise<number> {
  const debug = argv.includes('--debug');
  let failure: unknown;
  const run = async (work: () => Promise<void>) => {
    try {
      await work();
    } catch (err) {
      failure = err;
    }
  };
  try {
    await program(io, run).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its one-line message (or the help text).
      return err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
    }
    failure = err;
  }
  if (failure === undefined) return 0;
  const e = failure as Error;
  if (e instanceof Interrupted) {
    io.err(`nin: ${e.message}\n`);
    return EXIT_INTERRUPTED;
  }
  const expected = e instanceof ConfigError || e instanceof UnhealthyError;
  const message = String(e?.message ?? e).split('\n')[0];
  io.err(`nin: ${expected ? inFlagTerms(message) : `internal error: ${message}`}` +
    `${expected || debug ? '' : ' (rerun with --debug for the stack trace)'}\n`);
  if (debug && e?.stack) io.err(`${e.stack}\n`);
  return 1;
}
