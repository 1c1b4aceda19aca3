/**
 * What `nin train` shows while it trains: a progress bar on a terminal (plain lines about
 * every tenth of an epoch otherwise, for logs), one line per epoch, and warnings. Progress
 * goes to stderr; with `--json` the epoch lines go there too, keeping stdout for the JSON.
 */
import * as cliProgress from 'cli-progress';
import type { BatchInfo, EpochResult } from '../core/history';
import type { UserError } from '../core/validate';
import type { CheckpointLocation } from '../storage/checkpoint';
import type { RunView } from '../training/run';

/** Where a command writes; tests pass their own. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether stderr is a terminal (progress bar) or not (plain lines). */
  isTTY: boolean;
}

export const fixed = (x: number, digits = 3) => x.toFixed(digits);

/** The line printed after each epoch. */
function epochLine(r: EpochResult, numEpochs: number): string {
  return `epoch ${r.epoch}/${numEpochs}  loss ${fixed(r.trainLoss, 4)}  train acc ${fixed(r.trainAcc)}  ` +
    `test acc ${fixed(r.testAcc)}  ${r.examplesPerSec.toFixed(1)} examples/sec  ${r.seconds.toFixed(1)} s`;
}

/**
 * The view that reports a training run on `io`; `stop()` clears the bar. `names` says config
 * fields in the command line's words (its flags).
 */
export function trainReporter(io: Io, json: boolean, names: Record<string, string>): RunView & { stop(): void } {
  const bar = io.isTTY ? new cliProgress.SingleBar({
    format: 'epoch {epoch} |{bar}| {value}/{total} steps | loss {loss} | {eta_formatted} left',
    stream: process.stderr, hideCursor: true, clearOnComplete: true,
  }, cliProgress.Presets.shades_classic) : undefined;
  let saved: string | undefined;
  let numEpochs = 0;
  const progress = ({ epoch, batch, numBatches, loss }: BatchInfo) => {
    if (bar === undefined) {
      const every = Math.max(1, Math.round(numBatches / 10));
      if ((batch + 1) % every === 0 && batch + 1 < numBatches) io.err(`epoch ${epoch}: step ${batch + 1}/${numBatches}, loss ${fixed(loss)}\n`);
      return;
    }
    if (!bar.isActive) bar.start(numBatches, batch, { epoch, loss: fixed(loss) });
    bar.update(batch + 1, { epoch, loss: fixed(loss) });
    if (batch + 1 === numBatches) bar.stop();
  };
  return {
    onStart: (run) => { numEpochs = run.config.numEpochs; },
    onBatchEnd: progress,
    onSaved: (c: CheckpointLocation) => { saved = c.name; },
    onWarning: (warning: UserError) => io.err(`nin: warning: ${warning.messageFor(names)}\n`),
    onEpochEnd: (r: EpochResult) => {
      bar?.stop();
      const line = `${epochLine(r, numEpochs)}${saved ? `  (saved ${saved})` : ''}\n`;
      saved = undefined;
      if (!json) io.out(line);
      else if (!bar) io.err(line); // progress for logs, kept off stdout
    },
    stop: () => bar?.stop(),
  };
}
