/**
 * `nin time-to-accuracy`: how long a recipe takes on this machine to reach a test accuracy,
 * over one or more seeds (lib/training/timeToAccuracy.ts does the measuring).
 *
 *   npx nin time-to-accuracy --profile cpu --target 0.9 --runs 5
 */
import type { Command } from 'commander';
import { selectBackend } from '../kernels/backend';
import { UnhealthyError } from '../core/health';
import { TRAIN_DEFAULTS } from '../core/trainConfig';
import { positiveInt } from '../core/validate';
import { loadFashionMnist } from '../storage/fashionMnistFiles';
import { timeToAccuracy, TimeToAccuracy, TIME_TO_ACCURACY_DEFAULTS, resolveTimeToAccuracyConfig } from '../training/timeToAccuracy';
import type { TrainData } from '../training/loop';
import { RunOptions, TrainingRun } from '../training/run';
import { addRecipeOptions, backendOption, FLAGS, intArg, numberArg, RecipeOpts, recipeOptions } from './flags';
import type { Io } from './reporter';
import { EXIT_INTERRUPTED, Interrupted, watchStopSignals } from './stopSignals';

interface Opts extends RecipeOpts {
  target?: number; evalsPerEpoch?: number; runs?: number; dataDir?: string; backend?: string; json?: boolean;
}

/** One seed's outcome: measured, or the health check's verdict. */
export type SeedRun = { seed: number } & ({ outcome: 'measured'; result: TimeToAccuracy } | { outcome: 'unhealthy'; message: string });

/** Adds `nin time-to-accuracy` to the command line. */
export function addTimeToAccuracy(cmd: Command, io: Io, run: (work: () => Promise<void>) => Promise<void>): void {
  addRecipeOptions(cmd.command('time-to-accuracy')
    .description('train a recipe (the cpu profile unless --profile says otherwise) until the test accuracy reaches --target; ' +
      'report the time, epochs and accuracy curve, over --runs seeds'))
    .option('--target <acc>', `test accuracy to reach (default ${TIME_TO_ACCURACY_DEFAULTS.target})`, numberArg)
    .option('--evals-per-epoch <n>', `evaluations of the whole test set per epoch, evenly spaced (default ${TIME_TO_ACCURACY_DEFAULTS.evalsPerEpoch})`, intArg)
    .option('--runs <n>', 'seeds to run, one after another: --seed, --seed + 1, … (default 1)', intArg)
    .option('--data-dir <dir>', 'directory with the four Fashion-MNIST files')
    .addOption(backendOption())
    .option('--json', 'print one JSON object (the recipe, every run with its accuracy curve, the summary)')
    .action((opts: Opts, command: Command) =>
      run(() => timeToAccuracyCommand(opts, io, command.getOptionValueSource('oneByOne') !== 'default')));
}

async function timeToAccuracyCommand(opts: Opts, io: Io, oneByOneGiven: boolean): Promise<void> {
  const config = resolveTimeToAccuracyConfig({ target: opts.target, evalsPerEpoch: opts.evalsPerEpoch });
  const runCount = positiveInt('runs', opts.runs ?? 1);
  const options: RunOptions = { ...recipeOptions(opts, oneByOneGiven), profile: (opts.profile ?? 'cpu') as RunOptions['profile'] };
  const firstSeed = opts.seed ?? TRAIN_DEFAULTS.seed;
  TrainingRun.open(options).release(); // every recipe setting checked before the backend and the data load
  const stop = watchStopSignals((line) => io.err(`nin: ${line}\n`));
  try {
    const backend = await selectBackend(opts.backend);
    const d = await loadFashionMnist({ dataDir: opts.dataDir });
    const data: TrainData = { train: d.train, test: d.test };
    if (!opts.json) io.out(`backend: ${backend.description}\ndata: ${d.dir} (${d.source})\n`);
    const runs: SeedRun[] = [];
    for (let seed = firstSeed; seed < firstSeed + runCount && !stop.signal.aborted; seed++) {
      const seedRun = await oneSeed({ ...options, train: { ...options.train, seed } }, data, config, io, stop.signal);
      if (stop.signal.aborted) break; // a stopped run measured nothing
      runs.push(seedRun);
      if (!opts.json) io.out(`${describeSeedRun(seedRun, config.target)}\n`);
    }
    if (stop.signal.aborted) throw new Interrupted(`interrupted: ${runs.length} of ${runCount} runs finished`, stop.reason()?.exitCode ?? EXIT_INTERRUPTED);
    const summary = summarize(runs);
    if (opts.json) {
      io.out(`${JSON.stringify({ command: 'time-to-accuracy', backend: backend.description, profile: opts.profile ?? 'cpu', ...config, runs, summary }, null, 2)}\n`);
    } else {
      io.out(`${describeSummary(summary, config.target)}\n`);
    }
  } finally {
    stop.remove();
  }
}

/** One seed, its evaluations told on stderr as they come; a dead or diverged network is an outcome, not a failure. */
async function oneSeed(options: RunOptions, data: TrainData, config: { target: number; evalsPerEpoch: number }, io: Io, signal: AbortSignal): Promise<SeedRun> {
  const seed = options.train!.seed!;
  try {
    const result = await timeToAccuracy(options, data, config, {
      signal,
      onEvaluation: (p) => io.err(`seed ${seed}: ${p.epochs.toFixed(2)} epochs, ${p.seconds.toFixed(1)} s: test acc ${p.testAcc.toFixed(4)}\n`),
    });
    return { seed, outcome: 'measured', result };
  } catch (err) {
    if (!(err instanceof UnhealthyError)) throw err;
    return { seed, outcome: 'unhealthy', message: err.messageFor(FLAGS) };
  }
}

function describeSeedRun(r: SeedRun, target: number): string {
  if (r.outcome === 'unhealthy') return `seed ${r.seed}: ${r.message}`;
  const m = r.result;
  const best = Math.max(...m.curve.map((p) => p.testAcc));
  const where = `${m.epochs.toFixed(2)} epochs (${m.images.toLocaleString('en-US')} images), ${m.seconds.toFixed(1)} s, of which evaluation ${m.evalSeconds.toFixed(1)} s`;
  return m.reached
    ? `seed ${r.seed}: test accuracy ${m.curve.at(-1)!.testAcc.toFixed(4)} ≥ ${target} after ${where}`
    : `seed ${r.seed}: did not reach ${target} (best ${best.toFixed(4)}) in ${where}`;
}

export interface Summary {
  runs: number;
  reached: number;
  /**
   * Median seconds and epochs to the target over every run, a run that missed it (or died)
   * counting as slower than any: undefined unless more than half reached it. A median over
   * only the runs that reached would flatter a recipe that often misses.
   */
  medianSeconds?: number;
  medianEpochs?: number;
  /** Fastest and slowest seconds over the runs that reached the target. */
  minSeconds?: number;
  maxSeconds?: number;
}

export function summarize(runs: SeedRun[]): Summary {
  const hits = runs.flatMap((r) => (r.outcome === 'measured' && r.result.reached ? [r.result] : []));
  if (hits.length === 0) return { runs: runs.length, reached: 0 };
  const seconds = hits.map((h) => h.seconds).sort((a, b) => a - b);
  const epochs = hits.map((h) => h.epochs).sort((a, b) => a - b);
  const spread = { minSeconds: seconds[0], maxSeconds: seconds.at(-1) };
  const n = runs.length;
  if (2 * hits.length <= n) return { runs: n, reached: hits.length, ...spread };
  return { runs: n, reached: hits.length, medianSeconds: medianOf(seconds, n), medianEpochs: medianOf(epochs, n), ...spread };
}

/**
 * The median of `n` values whose smallest are `sorted` and the rest (the misses) above them
 * all; more than half of them must be in `sorted`, so the middle lies there.
 */
const medianOf = (sorted: number[], n: number) => (sorted[(n - 1) >> 1] + sorted[n >> 1]) / 2;

function describeSummary(s: Summary, target: number): string {
  const reached = `${s.reached} of ${s.runs} run${s.runs === 1 ? '' : 's'} reached ${target}`;
  if (s.minSeconds === undefined) return reached;
  const range = `${s.minSeconds.toFixed(1)}–${s.maxSeconds!.toFixed(1)} s`;
  if (s.medianSeconds === undefined) return `${reached} (${range}): no median, as half or more did not`;
  return `${reached}: median ${s.medianSeconds.toFixed(1)} s (${range}), median ${s.medianEpochs!.toFixed(2)} epochs`;
}
