/**
 * The `nin` command line: `nin shapes`, `nin train`, `nin time-to-accuracy`, `nin eval`, `nin data`, `nin bench`, `nin point`.
 *
 * Human-readable output goes to stdout, progress to stderr. With `--json` each command
 * prints exactly one JSON object on stdout and nothing else there. Errors are one line on
 * stderr and a non-zero exit; `--debug` adds the stack trace.
 */
import { Command, CommanderError } from 'commander';
import { BackendInfo, selectBackend } from '../kernels/backend';
import { numBatches } from '../core/fashionMnist';
import { FashionMnist, loadFashionMnist } from '../storage/fashionMnistFiles';
import { countParams, formatLayerSummary, layerSummary, nin, NIN_DEFAULTS } from '../core/model';
import { BENCH_DEFAULTS, benchmark, checkBenchFits, checkForwardFits, forwardBatchLimit } from '../training/benchmark';
import { describePosition, finalMetrics, formatFinalMetrics } from '../core/history';
import { CONSTANT_OUTPUT_WARNING, evaluateModel, formatEvaluation, modelInputSize } from '../core/evaluate';
import { ConfigError, errorSummary } from '../core/validate';
import { UnhealthyError } from '../core/health';
import { loadModelFromDir } from '../storage/checkpoint';
import { describeRun, RunOptions, RunResult, TrainingRun } from '../training/run';
import { Io, trainReporter } from './reporter';
import { EXIT_INTERRUPTED, Interrupted, StopReason, StopWatch, watchStopSignals } from './stopSignals';
import { addWeb } from './web';
import { addRecipeOptions, backendOption, FLAGS, intArg, RecipeOpts, recipeOptions } from './flags';
import { addTimeToAccuracy } from './timeToAccuracyCommand';
import { FileError, fsReason, userFsCode } from '../storage/files';
import { pointingGame, PointingGameConfig, POINTING_GAME_DEFAULTS, PointingGameResult, resolvePointingGameConfig } from '../core/pointingGame';
import { checkNinModel } from './webModel';

export type { Io } from './reporter';

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stderr.isTTY),
};

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** The data in JSON; `used`: the examples of each split a command used, when not all. */
function dataSummary(data: FashionMnist, used = { train: data.train.count, test: data.test.count }) {
  return {
    dir: data.dir, source: data.source, files: data.files,
    train: { count: used.train, height: data.train.height, width: data.train.width },
    test: { count: used.test, height: data.test.height, width: data.test.width },
  };
}

function backendSummary(b: BackendInfo) {
  return { name: b.name, description: b.description, skipped: b.skipped };
}

async function shapes(opts: { size: number; oneByOne: number; backend?: string; json?: boolean }, io: Io) {
  const backend = await selectBackend(opts.backend);
  for (const note of backend.notes ?? []) io.err(`nin: note: ${note}\n`); // nothing else here names the backend
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

interface TrainOpts extends RecipeOpts {
  backend?: string; dataDir?: string; json?: boolean; checkpointDir?: string; resume?: boolean;
}

/** How to continue a run saved in `dir`, as a command the user can paste. */
const resumeCommand = (dir: string) => `nin train --resume --checkpoint-dir ${dir}`;

/** The run's options as the library takes them: only what the user gave (undefined: the default, or the checkpoint's). */
function runOptions(opts: TrainOpts, oneByOneGiven: boolean): RunOptions {
  return { ...recipeOptions(opts, oneByOneGiven), checkpointDir: opts.checkpointDir, resume: opts.resume ? 'always' : 'never' };
}

/** What is about to happen, before the first step. */
function banner(run: TrainingRun, backend: BackendInfo, d: FashionMnist): string {
  const limits = run.limits;
  const lines = [`backend: ${backend.description}`, ...backend.skipped.map((x) => `  (skipped ${x})`),
    `data: ${d.dir} (${d.source}), ${limits.trainLimit ?? d.train.count} training / ${limits.testLimit ?? d.test.count} test examples`,
    describeRun(run)];
  return `${lines.join('\n')}\n`;
}

/** The backend and the data of a run. */
async function prepare(opts: TrainOpts): Promise<{ backend: BackendInfo; d: FashionMnist }> {
  const backend = await selectBackend(opts.backend);
  const d = await loadFashionMnist({ dataDir: opts.dataDir });
  return { backend, d };
}

/** A stopped run's last words: where it stopped, what was saved, how to go on. */
function interrupted(result: RunResult, reason: StopReason | undefined, dir: string | undefined, steps: number): Interrupted {
  const stop = result.history.interrupted!;
  if (result.saved === undefined && dir !== undefined) {
    return new Interrupted('interrupted before training started; nothing was saved', reason?.exitCode ?? EXIT_INTERRUPTED);
  }
  const where = stop.steps === 0 ? `stopped before epoch ${stop.epoch}` : `stopped at epoch ${stop.epoch}, step ${stop.steps} of ${steps}`;
  const by = reason === undefined || reason.what === 'Ctrl-C' ? '' : ` (${reason.what})`;
  const kept = dir === undefined || result.saved === undefined
    ? 'nothing saved (train with --checkpoint-dir DIR to keep progress)'
    : `saved ${describePosition(result.history.epochs.length, stop)} in ${result.saved.path}; resume with \`${resumeCommand(dir)}\``;
  return new Interrupted(`interrupted${by}: ${where}; ${kept}`, reason?.exitCode ?? EXIT_INTERRUPTED);
}

async function trainCommand(opts: TrainOpts, io: Io, oneByOneGiven: boolean) {
  // Watched from the start: a Ctrl-C while the backend and the data load lets the folder go cleanly.
  const stop = watchStopSignals((line) => io.err(`${io.isTTY ? '\n' : ''}nin: ${line}\n`));
  const reporter = trainReporter(io, Boolean(opts.json), FLAGS);
  try {
    const run = TrainingRun.open(runOptions(opts, oneByOneGiven)); // every option and the folder, before the slow parts
    let loaded: { backend: BackendInfo; d: FashionMnist } | undefined;
    const load = async () => {
      loaded = await prepare(opts);
      if (!opts.json && !stop.signal.aborted) io.out(banner(run, loaded.backend, loaded.d));
      return loaded.d;
    };
    let result: RunResult;
    try {
      result = await run.train(load, reporter, stop.signal);
    } catch (err) {
      if (!(err instanceof UnhealthyError)) throw err;
      const Same = err.constructor as typeof UnhealthyError; // said once, in flags, with the way back
      throw new Same(unhealthyLine(err, run.checkpointDir), err.position, err.lastGood, err.suggestedLr);
    }
    result.model.dispose();
    reportTraining(run, result, { ...loaded!, stop, io, json: Boolean(opts.json) });
  } finally {
    stop.remove();
    reporter.stop();
  }
}

/** What a finished (or stopped) `nin train` prints. */
function reportTraining(run: TrainingRun, result: RunResult, o: { backend: BackendInfo; d: FashionMnist; stop: StopWatch; io: Io; json: boolean }) {
  const dir = run.checkpointDir;
  const steps = numBatches(result.examples.train, run.config.batchSize);
  if (result.history.interrupted) throw interrupted(result, o.stop.reason(), dir, steps);
  const final = finalMetrics(result.history);
  if (!o.json) {
    o.io.out(`${formatFinalMetrics(final, o.backend.name)}\n`);
    return;
  }
  const s = run.resumed?.state;
  const resumedFrom = s ? { epochsCompleted: s.epochsCompleted, steps: s.steps } : null;
  o.io.out(json({
    command: 'train', backend: backendSummary(o.backend), data: dataSummary(o.d, result.examples), config: { train: run.config, model: run.model },
    history: result.history.epochs, final, ...(dir !== undefined ? { checkpoint: { dir, resumedFrom } } : {}),
  }));
}

/**
 * A dead or diverged run's line: its message in flags, and, when a good checkpoint stayed,
 * the command that resumes from it with the suggested learning rate.
 */
function unhealthyLine(err: UnhealthyError, dir: string | undefined): string {
  const line = err.messageFor(FLAGS);
  if (dir === undefined || err.lastGood === undefined) return line;
  const lr = err.suggestedLr === undefined ? '' : ` --lr ${err.suggestedLr}`;
  return `${line}; resume from it with \`${resumeCommand(dir)}${lr}\``;
}

interface EvalOpts { model: string; dataDir?: string; testLimit?: number; backend?: string; batchSize?: number; json?: boolean }

async function evalCommand(opts: EvalOpts, io: Io) {
  if (opts.batchSize !== undefined && (!Number.isInteger(opts.batchSize) || opts.batchSize < 1)) {
    throw new ConfigError(`--batch-size must be an integer >= 1, got ${opts.batchSize}`);
  }
  const backend = await selectBackend(opts.backend);
  const loaded = await loadModelFromDir(opts.model);
  if (loaded.note) io.err(`nin: note: ${loaded.note}\n`);
  try {
    const resize = modelInputSize(loaded.model);
    const batchSize = evalBatchSize(loaded, opts.batchSize);
    const d = await loadFashionMnist({ dataDir: opts.dataDir, trainLimit: 1, testLimit: opts.testLimit });
    const e = evaluateModel(loaded.model, d.test, { batchSize });
    const checkpoint = loaded.state ? { epochsCompleted: loaded.state.epochsCompleted, steps: loaded.state.steps } : null;
    if (e.constantOutput) io.err(`nin: warning: ${CONSTANT_OUTPUT_WARNING.messageFor(FLAGS)}\n`);
    if (opts.json) {
      io.out(json({
        command: 'eval', backend: backendSummary(backend), model: { path: loaded.path, inputSize: resize, checkpoint },
        data: { dir: d.dir, source: d.source, split: 'test', count: d.test.count },
        accuracy: e.accuracy, correct: e.correct, count: e.count, perClass: e.perClass,
        ...(e.constantOutput ? { warning: CONSTANT_OUTPUT_WARNING.messageFor(FLAGS) } : {}),
        confusionMatrix: e.confusion, confusionMatrixAxes: { rows: 'true class', columns: 'predicted class' },
      }));
      return;
    }
    io.out(`backend: ${backend.description}\nmodel: ${loaded.path} (${resize}×${resize} px input` +
      `${checkpoint ? `, ${describePosition(checkpoint.epochsCompleted, loaded.state!.partial)}` : ''})\n` +
      `data: ${d.dir} (${d.source}), ${d.test.count} test examples\n\n${formatEvaluation(e, FLAGS)}`);
  } finally {
    loaded.model.dispose();
  }
}

/**
 * Images per forward pass for `nin eval`: --batch-size if its forward pass fits, else a
 * refusal naming the most that do; without it the default 256, or fewer where the model's
 * images are so large that 256 would not fit. A model whose one image cannot be predicted
 * within a pass's memory is refused, naming its input size.
 */
function evalBatchSize(loaded: { model: Parameters<typeof forwardBatchLimit>[0]; path: string }, given: number | undefined): number | undefined {
  let fits: number;
  try {
    fits = forwardBatchLimit(loaded.model);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(`the model in ${loaded.path}: ${err.messageFor({ resize: 'its input size' })}`);
  }
  if (given !== undefined) checkForwardFits(loaded.model, given);
  return given ?? (fits < 256 ? fits : undefined);
}

async function bench(opts: { resize?: number; batchSize?: number; steps?: number; backend?: string; json?: boolean }, io: Io) {
  const backend = await selectBackend(opts.backend);
  const config = checkBenchFits({ resize: opts.resize, batchSize: opts.batchSize, steps: opts.steps }); // before the banner
  if (!opts.json) {
    io.out(`backend: ${backend.description}\nNiN at ${config.resize} px, batch ${config.batchSize}, ` +
      `random data; median of ${config.steps} steps after ${config.warmup} untimed\n`);
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
/** Runs a command's work, catching what it throws for main() to report. */
type Runner = (work: () => Promise<void>) => Promise<void>;

function program(io: Io, run: Runner): Command {
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
  for (const add of [addShapes, addTrain, addTimeToAccuracy, addEval, addBench, addData, addWeb, addPoint]) add(cmd, io, run);
  return cmd;
}

function addShapes(cmd: Command, io: Io, run: Runner): void {
  cmd.command('shapes')
    .description("print each layer's output shape and parameters for one image")
    .option('--size <px>', 'input image side', intArg, NIN_DEFAULTS.inputSize)
    .option('--one-by-one <n>', 'follow-up 1×1 convolutions per block (0–3)', intArg, NIN_DEFAULTS.oneByOneCount)
    .addOption(backendOption())
    .option('--json', 'print one JSON object')
    .action((opts) => run(() => shapes(opts, io)));
}

function addTrain(cmd: Command, io: Io, run: Runner): void {
  addRecipeOptions(cmd.command('train')
    .description('train NiN on Fashion-MNIST and report loss, accuracy and speed'))
    .option('--data-dir <dir>', 'directory with the four Fashion-MNIST files')
    .addOption(backendOption())
    .option('--checkpoint-dir <dir>', 'save a checkpoint there after every epoch (and on Ctrl-C)')
    .option('--resume', 'continue from the last checkpoint in --checkpoint-dir')
    .option('--json', 'print one JSON object (config, per-epoch history, final metrics)')
    .action((opts, command: Command) =>
      run(() => trainCommand(opts, io, command.getOptionValueSource('oneByOne') !== 'default')));
}

function addEval(cmd: Command, io: Io, run: Runner): void {
  cmd.command('eval')
    .description('evaluate a saved model on the test set: accuracy, per-class accuracy, confusion matrix')
    .requiredOption('--model <dir>', 'a checkpoint directory (its latest checkpoint) or a folder with model.json')
    .option('--data-dir <dir>', 'directory with the four Fashion-MNIST files')
    .option('--test-limit <n>', 'use only the first n test examples', intArg)
    .option('--batch-size <n>', 'examples per forward pass (default 256)', intArg)
    .addOption(backendOption())
    .option('--json', 'print one JSON object')
    .action((opts) => run(() => evalCommand(opts, io)));
}

function addBench(cmd: Command, io: Io, run: Runner): void {
  cmd.command('bench')
    .description('forward and training-step throughput of NiN on random data')
    .option('--resize <px>', `input side (default ${BENCH_DEFAULTS.resize})`, intArg)
    .option('--batch-size <n>', `images per step (default ${BENCH_DEFAULTS.batchSize})`, intArg)
    .option('--steps <n>', `timed steps per figure (default ${BENCH_DEFAULTS.steps})`, intArg)
    .addOption(backendOption())
    .option('--json', 'print one JSON object, with the reference script\'s field names')
    .action((opts) => run(() => bench(opts, io)));
}

function addData(cmd: Command, io: Io, run: Runner): void {
  cmd.command('data')
    .description('find Fashion-MNIST (downloading it if needed) and check its four files')
    .option('--data-dir <dir>', 'directory with the four Fashion-MNIST files')
    .option('--json', 'print one JSON object')
    .action((opts) => run(() => data(opts, io)));
}

// ---------------------------------------------------------------------------------------------
// nin point: the pointing game on a saved model (lib/core/pointingGame.ts, docs/class-maps.md)

interface PointOpts {
  model: string; grid?: number; mosaics?: number; seed?: number; tile?: number; layout?: string; tileCells?: number; taps?: string;
  score?: string; peak?: string; draw?: string; dataDir?: string; backend?: string; json?: boolean;
}

/** The pointing game's settings → their flags, beside the shared table, for its errors. */
const POINT_FLAGS: Record<string, string> = {
  ...FLAGS, grid: '--grid', mosaics: '--mosaics', seed: '--seed', tile: '--tile', layout: '--layout', tileCells: '--tile-cells', taps: '--taps',
  score: '--score', peak: '--peak', draw: '--draw',
};

/** `work`, its ConfigErrors said with the pointing game's flags. */
function inPointFlags<T>(work: () => T): T {
  try {
    return work();
  } catch (err) {
    throw err instanceof ConfigError ? new ConfigError(err.messageFor(POINT_FLAGS)) : err;
  }
}

async function pointCommand(opts: PointOpts, io: Io) {
  const config = inPointFlags(() => resolvePointingGameConfig({
    grid: opts.grid, mosaics: opts.mosaics, seed: opts.seed, tile: opts.tile, layout: opts.layout as PointingGameConfig['layout'], tileCells: opts.tileCells,
    taps: opts.taps as PointingGameConfig['taps'], score: opts.score as PointingGameConfig['score'],
    peak: opts.peak as PointingGameConfig['peak'], draw: opts.draw as PointingGameConfig['draw'],
  }));
  const backend = await selectBackend(opts.backend);
  const loaded = await loadModelFromDir(opts.model);
  if (loaded.note) io.err(`nin: note: ${loaded.note}\n`);
  try {
    const checked = checkNinModel(loaded.model);
    if (!checked.ok) throw new ConfigError(`the model in ${loaded.path} is not a NiN the pointing game can read: ${checked.problem}`);
    const { inputSize, oneByOneCount, oneByOneKernel } = checked.shape;
    const d = await loadFashionMnist({ dataDir: opts.dataDir, trainLimit: 1 });
    const r = inPointFlags(() => pointingGame(loaded.model, { oneByOneCount, oneByOneKernel }, d.test, config));
    if (opts.json) {
      io.out(json({
        command: 'point', backend: backendSummary(backend), model: { path: loaded.path, inputSize },
        data: { dir: d.dir, source: d.source, split: 'test', count: d.test.count }, ...r,
      }));
      return;
    }
    io.out(`backend: ${backend.description}\nmodel: ${loaded.path} (${inputSize}×${inputSize} px input)\n` +
      `data: ${d.dir} (${d.source}), ${d.test.count} test images\n${describePointing(r)}`);
  } finally {
    loaded.model.dispose();
  }
}

/** The pointing game's settings, result and per-class table, as `nin point` prints them. */
function describePointing(r: PointingGameResult): string {
  const c = r.config;
  const f3 = (v: number | null) => (v === null ? '—' : v.toFixed(3));
  const rows = r.perClass.map((k) => `${k.name.padEnd(11)} ${String(k.present).padStart(7)} ${String(k.hits).padStart(5)} ` +
    `${f3(k.hitRate).padStart(8)} ${f3(k.chance).padStart(7)}`);
  return `pointing game: ${c.mosaics} mosaics of ${c.grid}×${c.grid} test images (seed ${c.seed}${c.draw === 'distinct' ? ', distinct classes' : ''}), ` +
    `${c.tile}-px images, ${c.layout} layout${c.tileCells === undefined ? '' : ` (${c.tileCells} cells a tile)`} (a ${r.inputSide}-px input, ${r.mapSide}×${r.mapSide} maps), ${c.taps} taps, ` +
    `peaks of the ${c.score === 'map' ? 'class map' : c.score} on the ${c.peak === 'cell' ? 'cells' : 'map as drawn'}\n\n` +
    `hit rate ${r.hitRate.toFixed(3)} (${r.hits} of ${r.pairs} classes present), chance ${r.chance.toFixed(3)}\n\n` +
    `class       present  hits hit rate  chance\n${rows.join('\n')}\n`;
}

function addPoint(cmd: Command, io: Io, run: Runner): void {
  const d = POINTING_GAME_DEFAULTS;
  cmd.command('point')
    .description("how well the class maps point: for each class in a mosaic of test images, does its map's peak fall on a tile of that class?")
    .requiredOption('--model <dir>', 'a checkpoint directory (its latest checkpoint) or a folder with model.json')
    .option('--grid <n>', `tiles per side of each mosaic, 2–8 (default ${d.grid})`, intArg)
    .option('--mosaics <n>', `mosaics scored (default ${d.mosaics})`, intArg)
    .option('--seed <n>', `seed of the draw of test images (default ${d.seed})`, intArg)
    .option('--tile <px>', "side of each test image in the mosaic, 28–224 (default: the model's input size)", intArg)
    .option('--layout <name>', `aligned (each image on one cell's window, black between) or packed (side by side) (default ${d.layout})`)
    .option('--tile-cells <n>', 'aligned layout: cells each tile spans a side, odd; more leaves more black between images (default: the fewest, 3 at 67 px)', intArg)
    .option('--taps <name>', `trained (taps the training size never reached set to 0) or all (default ${d.taps})`)
    .option('--score <name>', `what is compared at each place: softmax, contrast or map (default ${d.score})`)
    .option('--peak <name>', `cell (the largest cell, where it looks) or drawn (the brightest pixel as the chart draws it) (default ${d.peak})`)
    .option('--draw <name>', `any test images, or distinct classes in each mosaic (default ${d.draw})`)
    .option('--data-dir <dir>', 'directory with the four Fashion-MNIST files')
    .addOption(backendOption())
    .option('--json', 'print one JSON object')
    .action((opts) => run(() => pointCommand(opts, io)));
}

/**
 * The one line an error becomes: a user's error (a bad option, a damaged file, a full disk,
 * a dead network) says what to do, with config fields named by their flags; anything else
 * is an internal error.
 */
function errorLine(e: unknown, debug: boolean): string {
  if (e instanceof Interrupted) return e.message;
  if (e instanceof ConfigError) return e.messageFor(FLAGS).split('\n')[0];
  if (e instanceof UnhealthyError) return e.messageFor(FLAGS).split('\n')[0];
  const err = e as NodeJS.ErrnoException;
  if (userFsCode(err) !== undefined && err.path !== undefined) {
    return `cannot ${err.syscall ?? 'use'} ${err.path} ${fsReason(err)}`; // a file-system failure a user can fix
  }
  return `internal error: ${errorSummary(e)}${debug ? '' : ' (rerun with --debug for the stack trace)'}`;
}

/** What kind of failure `--json`'s error object reports: what the user can do about it. */
export type ErrorKind = 'config' | 'file' | 'unhealthy' | 'interrupted' | 'internal';

function errorKind(e: unknown): ErrorKind {
  if (e instanceof Interrupted) return 'interrupted';
  if (e instanceof UnhealthyError) return 'unhealthy';
  if (e instanceof FileError) return 'file';
  if (e instanceof ConfigError || e instanceof CommanderError) return 'config'; // a bad option, flag or value
  const err = e as NodeJS.ErrnoException;
  return userFsCode(err) !== undefined && err.path !== undefined ? 'file' : 'internal';
}

/**
 * Runs the CLI on `argv` (node-style: [node, script, ...args]); resolves to the exit code.
 * A failure is one line on stderr; with --json also one object on stdout,
 * `{"command": ..., "error": {"message": <the line>, "kind": <ErrorKind>}}`, so that a
 * program reading stdout always gets an answer.
 */
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
  const cmd = program(io, run);
  // The command and its --json, as parsed; before an action runs (a bad flag), as written.
  const args = argv.slice(2);
  let command: string | undefined = cmd.commands.map((c) => c.name()).find((name) => args.includes(name));
  let wantsJson = args.includes('--json');
  cmd.hook('preAction', (_, action) => {
    command = action.name();
    wantsJson = Boolean(action.opts().json);
  });
  let code = 1;
  try {
    await cmd.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its one-line message (or the help text).
      if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      code = 2;
      failure = err;
    } else {
      failure = err;
    }
  }
  if (failure === undefined) return 0;
  const e = failure as Error;
  const line = e instanceof CommanderError ? e.message.replace(/^error: /, '') : errorLine(e, debug);
  if (!(e instanceof CommanderError)) io.err(`nin: ${line}\n`);
  if (debug && e?.stack && !(e instanceof Interrupted) && !(e instanceof CommanderError)) io.err(`${e.stack}\n`);
  if (wantsJson) io.out(json({ command: command ?? null, error: { message: line, kind: errorKind(e) } }));
  return e instanceof Interrupted ? e.exitCode : code;
}
