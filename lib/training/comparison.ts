/**
 * Running variants of NiN side by side, as the chapter's exercises do: each variant trains
 * through the one door (lib/training/run.ts) on the same data, seed and budget, and becomes
 * a row of a table.
 *
 *   const exercises = new Comparison({ profile: profile.exercise, train: { seed: 1 } }, data, { say: console.log, runs: 15 });
 *   await exercises.run([{ name: '1× 1×1 conv', model: { oneByOneCount: 1 } }]);
 *   exercises.results   // one row per variant that trained; a dead or diverged one is told, not tabulated
 */
import { countParams } from '../core/model';
import { UnhealthyError, DeadNetworkError } from '../core/health';
import type { TrainConfig } from '../core/trainConfig';
import { describeEstimate, estimateTraining, fitToBudget } from './estimate';
import type { TrainData } from './loop';
import { RunOptions, TrainingRun, trainNin } from './run';

/** One variant: its name in the table, and what it changes in the base run. */
export interface Variant {
  name: string;
  model?: RunOptions['model'];
  train?: Partial<TrainConfig>;
}

/** A row of the comparison. */
export interface VariantResult {
  run: string;
  params: number;
  'train loss': number;
  'train acc': number;
  'test acc': number;
  /** Classes whose channel of the last block was silent at the end (a partly dead network). */
  silent: number;
  seconds: number;
}

/** Variants of one base run, trained one after another on the same data. */
export class Comparison {
  readonly results: VariantResult[] = [];
  /** The base run's share of the data, fitted to its budget once for every variant (so all see the same images). */
  private fitted?: RunOptions;

  /**
   * `say` receives a line per variant and the time estimate (`console.log` in a notebook);
   * `runs`, how many variants will be trained in all, lets the estimate give the total.
   */
  constructor(
    private readonly base: RunOptions, private readonly data: TrainData,
    private readonly tell: { say?: (line: string) => void; runs?: number } = {},
  ) {}

  private say(line: string): void {
    this.tell.say?.(line);
  }

  /** Trains each variant in turn; a variant already in the table is not trained again. */
  async run(variants: Variant[]): Promise<void> {
    for (const v of variants) {
      if (this.results.some((r) => r.run === v.name)) continue;
      await this.train(v);
    }
  }

  private async train(v: Variant): Promise<void> {
    const options = { ...this.fit(), model: { ...this.base.model, ...v.model }, train: { ...this.base.train, ...v.train } };
    const started = performance.now();
    try {
      const { model, history } = await trainNin(options, this.data);
      const e = history.epochs[history.epochs.length - 1];
      const row: VariantResult = {
        run: v.name, params: countParams(model), 'train loss': e.trainLoss, 'train acc': e.trainAcc, 'test acc': e.testAcc,
        silent: e.silentClasses?.length ?? 0, seconds: (performance.now() - started) / 1000,
      };
      model.dispose();
      this.results.push(row);
      this.say(describeResult(row));
    } catch (err) {
      // A run that diverged or died is a result too: say so, and leave it out of the table.
      if (!(err instanceof UnhealthyError)) throw err;
      this.say(`${v.name}: ${err instanceof DeadNetworkError ? 'died' : 'diverged'}, left out of the results (${err.message.split(':')[0]})`);
    }
  }

  /** The base options with its budget turned into data limits and epochs, measured once. */
  private fit(): RunOptions {
    if (this.fitted) return this.fitted;
    const probe = TrainingRun.open({ ...this.base, budgetSeconds: undefined });
    probe.release();
    const trainCount = Math.min(probe.limits.trainLimit ?? this.data.train.count, this.data.train.count);
    const testCount = Math.min(probe.limits.testLimit ?? this.data.test.count, this.data.test.count);
    const budget = probe.budgetSeconds;
    const estimate = estimateTraining(probe.config, trainCount, testCount);
    const runs = this.tell.runs;
    this.say(`each run: ${describeEstimate(estimate)}${runs ? `; all ${runs}: about ${Math.round((runs * estimate.seconds) / 60)} minutes` : ''}`);
    if (budget === undefined) return (this.fitted = { ...this.base, trainLimit: trainCount, testLimit: testCount, budgetSeconds: undefined });
    const fit = fitToBudget(estimate, { seconds: budget, whose: "each run's" });
    if (fit.note) this.say(fit.note);
    return (this.fitted = {
      ...this.base, budgetSeconds: undefined, trainLimit: fit.trainCount, testLimit: testCount,
      train: { ...this.base.train, numEpochs: fit.epochs },
    });
  }
}

/** "1× 1×1 conv: loss 0.512, train acc 0.812, test acc 0.801, 1 silent class (41.2 s)". */
function describeResult(r: VariantResult): string {
  const silent = r.silent === 0 ? '' : `, ${r.silent} silent class${r.silent === 1 ? '' : 'es'}`;
  return `${r.run}: loss ${r['train loss'].toFixed(3)}, train acc ${r['train acc'].toFixed(3)}, ` +
    `test acc ${r['test acc'].toFixed(3)}${silent} (${r.seconds.toFixed(1)} s)`;
}
