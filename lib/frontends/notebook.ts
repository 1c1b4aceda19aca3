/**
 * Showing things in a tslab notebook: charts as multi-mimetype bundles, and displays that a
 * running training loop redraws in place.
 *
 * Each chart is sent as one bundle holding its interactive form (vega-lite or plotly JSON,
 * which JupyterLab draws), an SVG drawn by vega in Node (classic Notebook, nbconvert HTML
 * and GitHub show that), and a line of text. Nothing is fetched from a CDN.
 *
 * tslab's public display API sends one mimetype per message, so bundles go through the writer
 * tslab installs for the cell being executed (`tslab/dist/jupyter`'s lastWriteDisplayData).
 * Outside a tslab kernel (a script, a test) each display prints its text/plain line instead.
 */
import { PlotlyFigure, TrainingCurves, vegaLiteToSvg, VegaLiteSpec } from '../core/plots';
import type { BatchInfo, EpochResult } from '../core/history';
import type { UserError } from '../core/validate';
import { describeRun, RunView, TrainingRun } from '../training/run';
import * as path from 'node:path';
import { packageRoot } from '../storage/paths';

/** mimetype → data, as in a Jupyter display_data message. */
export type MimeBundle = Record<string, unknown>;

export const VEGA_LITE_MIME = 'application/vnd.vegalite.v5+json';
export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

type Writer = (message: { data: MimeBundle; metadata: object; transient: object }, update: boolean) => void;

/** The display writer of the tslab cell now executing, if any. Read at each call: tslab replaces it per cell. */
function tslabWriter(): Writer | undefined {
  const pattern = /[\\/]tslab[\\/]dist[\\/]jupyter\.js$/;
  const loaded = Object.values(require.cache).find((m) => m && pattern.test(m.id));
  const writer = (loaded?.exports as { lastWriteDisplayData?: Writer | null } | undefined)?.lastWriteDisplayData;
  return typeof writer === 'function' ? writer : undefined;
}

/** Whether this code runs inside a tslab kernel that can show bundles. */
export function inNotebook(): boolean {
  return tslabWriter() !== undefined;
}

let displayCounter = 0;

/** A display area that can be drawn again in place (Jupyter's update_display_data). */
export interface LiveDisplay {
  /** Draws `bundle`, replacing what this display showed before. */
  update(bundle: MimeBundle): void;
}

/**
 * A new display area; its first `update` creates it, later ones replace its content.
 *
 * JupyterLab hands an update to the renderer already on screen when the mimetype stays the
 * same, and plotly's renderer ignores a new figure once it has drawn one: the live chart would
 * stay at its first point. So an update of a plotly bundle first replaces the display with
 * its text alone, which makes JupyterLab draw the figure with a fresh renderer.
 */
export function newLiveDisplay(): LiveDisplay {
  const id = `nin-${process.pid}-${++displayCounter}`;
  let shown = false;
  return {
    update(bundle: MimeBundle) {
      const write = tslabWriter();
      if (write) {
        const message = (data: MimeBundle) => ({ data, metadata: {}, transient: { display_id: id } });
        if (shown && PLOTLY_MIME in bundle) write(message({ 'text/plain': bundle['text/plain'] ?? '' }), true);
        write(message(bundle), shown);
        shown = true;
      } else if (typeof bundle['text/plain'] === 'string') {
        console.log(bundle['text/plain']);
      }
    },
  };
}

/** Shows `bundle` once, as its own output. */
export function display(bundle: MimeBundle): void {
  newLiveDisplay().update(bundle);
}

/** A vega-lite chart as a bundle: the spec, its SVG, and `text`. */
export async function vegaLiteBundle(spec: VegaLiteSpec, text: string): Promise<MimeBundle> {
  return { [VEGA_LITE_MIME]: spec, 'image/svg+xml': await vegaLiteToSvg(spec), 'text/plain': text };
}

/**
 * A plotly figure as a bundle, with `sameChart` (the same data as a vega-lite spec) for the
 * front ends that cannot draw plotly: a JupyterLab without the plotly extension draws the
 * vega-lite spec (its vega renderer ranks after plotly's but before SVG, and unlike SVG it
 * draws in an untrusted notebook too), and the static SVG, drawn here by vega, serves the
 * classic Notebook and HTML exports.
 */
export async function plotlyBundle(figure: PlotlyFigure, sameChart: VegaLiteSpec, text: string): Promise<MimeBundle> {
  return { [PLOTLY_MIME]: figure, [VEGA_LITE_MIME]: sameChart, 'image/svg+xml': await vegaLiteToSvg(sameChart), 'text/plain': text };
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Rows of objects as an HTML table (and aligned text), keys of the first row as columns. */
export function tableBundle(objects: ReadonlyArray<object>, caption?: string): MimeBundle {
  const rows = objects as ReadonlyArray<Record<string, unknown>>;
  const columns = rows.length ? Object.keys(rows[0]) : [];
  const cell = (v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(3) : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  const text = [caption ?? '', line(columns), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))]
    .filter((l) => l !== '').join('\n');
  const html = `<table>${caption ? `<caption>${escapeHtml(caption)}</caption>` : ''}` +
    `<thead><tr>${columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${columns.map((c) => `<td>${escapeHtml(cell(r[c]))}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>';
  return { 'text/html': html, 'text/plain': text };
}

/**
 * d2l's `Animator` for this project: a view of a training run that draws the training curves
 * in place while the model trains (the plotly curves and the vega-lite loss of every step),
 * and prints the run's notes and warnings:
 *
 *   const { model, history } = await trainNin({ profile: 'cpu' }, data, new Animator());
 *
 * A resumed run's earlier epochs are drawn first (their test accuracies; the steps of
 * another session are not kept).
 */
export class Animator implements RunView {
  private curves = new TrainingCurves(1);
  private readonly live = newLiveDisplay();
  private readonly liveSteps = newLiveDisplay();

  /** Redraws both charts from the curves. */
  async redraw(): Promise<void> {
    const c = this.curves;
    this.live.update(await plotlyBundle(c.toPlotly(), c.toVegaLite(), c.summary()));
    this.liveSteps.update(await vegaLiteBundle(c.stepLossVegaLite(), `${c.steps.length} steps`));
  }

  readonly onNote = (text: string): void => console.log(text);

  readonly onWarning = (warning: UserError): void => console.log(`warning: ${warning.message}`);

  readonly onStart = async (run: TrainingRun, done: EpochResult[]): Promise<void> => {
    console.log(describeRun(run));
    this.curves = new TrainingCurves(run.config.numEpochs);
    done.forEach((r) => this.curves.epochEnd(r));
    if (done.length > 0) await this.redraw();
  };

  readonly onBatchEnd = async (b: BatchInfo): Promise<void> => {
    if (this.curves.batchEnd(b)) await this.redraw();
  };

  readonly onEpochEnd = async (r: EpochResult): Promise<void> => {
    this.curves.epochEnd(r);
    await this.redraw();
  };
}

/** Where the notebooks keep the checkpoints of run `name`: `$NIN_RUNS_DIR/name`, else the project's `runs/name`. */
export function notebookRunDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.NIN_RUNS_DIR || path.join(packageRoot(), 'runs'), name);
}
