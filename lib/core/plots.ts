/**
 * Plots of training runs and of the network, as data: vega-lite specs, plotly figures, and
 * SVG rendered by vega itself in Node (for every viewer that shows only images: classic
 * Notebook, nbconvert HTML, GitHub). Plots read results; they never drive training.
 */
import { encode as encodePng } from 'fast-png';
import type { BatchInfo, EpochResult } from './history';
import type { LayerRow } from './model';

/** A vega-lite v5 specification (kept loose: vega-lite validates it). */
export type VegaLiteSpec = Record<string, unknown>;

/** A plotly figure: traces and layout, as plotly.js and Jupyter's plotly mimetype take them. */
export interface PlotlyFigure {
  data: Array<Record<string, unknown>>;
  layout: Record<string, unknown>;
}

export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** One point of a training curve: `x` in (fractional) epochs. */
export interface CurvePoint {
  x: number;
  series: 'train loss' | 'train acc' | 'test acc';
  value: number;
}

/**
 * Collects the curves d2l's animator draws while a model trains: running train loss and
 * train accuracy a few times per epoch, test accuracy after each epoch. Feed it from
 * `train`'s callbacks; `batchEnd` says when a new point was added (time to redraw).
 */
export class TrainingCurves {
  readonly points: CurvePoint[] = [];
  /** The loss of every step, `x` in fractional epochs. */
  readonly steps: Array<{ x: number; loss: number }> = [];
  private lossSum = 0;
  private accSum = 0;
  private batches = 0;

  /** @param pointsPerEpoch how many train-loss/accuracy points per epoch (d2l uses 5). */
  constructor(readonly numEpochs: number, readonly pointsPerEpoch = 5) {}

  batchEnd(info: BatchInfo): boolean {
    if (info.batch === 0) {
      this.lossSum = 0;
      this.accSum = 0;
      this.batches = 0;
    }
    this.lossSum += info.loss;
    this.accSum += info.acc;
    this.batches++;
    this.steps.push({ x: info.epoch - 1 + (info.batch + 1) / info.numBatches, loss: info.loss });
    const every = Math.max(1, Math.floor(info.numBatches / this.pointsPerEpoch));
    const last = info.batch + 1 === info.numBatches;
    if ((info.batch + 1) % every !== 0 && !last) return false;
    const x = info.epoch - 1 + (info.batch + 1) / info.numBatches;
    this.points.push({ x, series: 'train loss', value: this.lossSum / this.batches });
    this.points.push({ x, series: 'train acc', value: this.accSum / this.batches });
    return true;
  }

  epochEnd(result: EpochResult): void {
    this.points.push({ x: result.epoch, series: 'test acc', value: result.testAcc });
  }

  /** A one-line summary of the latest values, for text-only outputs. */
  summary(): string {
    const latest = (s: CurvePoint['series']) => [...this.points].reverse().find((p) => p.series === s);
    const parts = (['train loss', 'train acc', 'test acc'] as const)
      .map((s) => latest(s))
      .filter((p): p is CurvePoint => p !== undefined)
      .map((p) => `${p.series} ${p.value.toFixed(3)}`);
    const x = this.points.length ? this.points[this.points.length - 1].x : 0;
    return `epoch ${x.toFixed(2)}/${this.numEpochs}: ${parts.join(', ') || 'no points yet'}`;
  }

  toVegaLite(title = 'NiN training'): VegaLiteSpec {
    return {
      $schema: VEGA_LITE_SCHEMA,
      title,
      width: 360,
      height: 220,
      data: { values: this.points },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: 'epoch', scale: { domain: [0, this.numEpochs] } },
        y: { field: 'value', type: 'quantitative', title: null },
        color: {
          field: 'series', type: 'nominal', title: null,
          scale: { domain: ['train loss', 'train acc', 'test acc'] },
        },
        strokeDash: { field: 'series', type: 'nominal', legend: null },
      },
    };
  }

  /** The loss of every step (noisy) under its running mean per epoch: where d2l's curve comes from. */
  stepLossVegaLite(title = 'Loss of every step'): VegaLiteSpec {
    return {
      $schema: VEGA_LITE_SCHEMA,
      title,
      width: 360,
      height: 160,
      layer: [
        {
          data: { values: this.steps },
          mark: { type: 'line', strokeWidth: 0.7, opacity: 0.6 },
          encoding: {
            x: { field: 'x', type: 'quantitative', title: 'epoch', scale: { domain: [0, this.numEpochs] } },
            y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
          },
        },
        {
          data: { values: this.points.filter((p) => p.series === 'train loss') },
          mark: { type: 'line', color: 'black', point: { filled: true, size: 20 } },
          encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'value', type: 'quantitative' } },
        },
      ],
    };
  }

  toPlotly(title = 'NiN training'): PlotlyFigure {
    const series = ['train loss', 'train acc', 'test acc'] as const;
    const dash = { 'train loss': 'solid', 'train acc': 'dash', 'test acc': 'dot' };
    return {
      data: series.map((s) => {
        const pts = this.points.filter((p) => p.series === s);
        return { type: 'scatter', mode: 'lines+markers', name: s, x: pts.map((p) => p.x), y: pts.map((p) => p.value),
          line: { dash: dash[s] } };
      }),
      layout: {
        title: { text: title }, width: 520, height: 320,
        xaxis: { title: { text: 'epoch' }, range: [0, this.numEpochs] },
        yaxis: { rangemode: 'tozero' },
        margin: { l: 50, r: 20, t: 50, b: 45 },
      },
    };
  }
}

/** Parameters per row of the layer table, with each row's output shape (NCHW) as a label. */
export function layerParamsChart(rows: LayerRow[], title = 'NiN: parameters per layer'): VegaLiteSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title,
    width: 360,
    data: { values: rows.map((r) => ({ layer: r.name, params: r.params, shape: `(${r.shapeNCHW.join(', ')})` })) },
    encoding: {
      y: { field: 'layer', type: 'nominal', sort: null, title: null }, // table order
    },
    layer: [
      { mark: 'bar', encoding: { x: { field: 'params', type: 'quantitative', title: 'parameters' }, tooltip: [{ field: 'shape' }, { field: 'params' }] } },
      {
        mark: { type: 'text', align: 'left', dx: 4, fontSize: 10 },
        encoding: { x: { field: 'params', type: 'quantitative' }, text: { field: 'shape' } },
      },
    ],
  };
}

/** A bar chart comparing runs (e.g. the exercises): one bar per run and metric. */
export function comparisonChart(
  runs: ReadonlyArray<{ run: string }>, metrics: string[], title = 'Comparison',
): VegaLiteSpec {
  const values = runs.flatMap((r) =>
    metrics.map((m) => ({ run: r.run, metric: m, value: Number((r as Record<string, unknown>)[m]) })));
  return {
    $schema: VEGA_LITE_SCHEMA,
    title,
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'run', type: 'nominal', title: null, sort: null },
      xOffset: { field: 'metric' },
      y: { field: 'value', type: 'quantitative', title: null },
      color: { field: 'metric', type: 'nominal', title: null },
      tooltip: [{ field: 'run' }, { field: 'metric' }, { field: 'value', format: '.3f' }],
    },
  };
}

/**
 * The filters of a convolution with one input channel (kernel [k, k, 1, filters], as tfjs
 * stores it) as one grey mosaic: `columns` filters a row, each scaled on its own from its
 * minimum (black) to its maximum (white), a 1-pixel gap between them.
 */
export function filterMosaic(kernel: Float32Array, k: number, filters: number, columns = 16): { pixels: Uint8Array; height: number; width: number } {
  const rows = Math.ceil(filters / columns);
  const width = columns * (k + 1) - 1;
  const height = rows * (k + 1) - 1;
  const pixels = new Uint8Array(width * height).fill(255);
  for (let f = 0; f < filters; f++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < k * k; i++) {
      const v = kernel[i * filters + f]; // [ky, kx, 0, f]
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const x0 = (f % columns) * (k + 1);
    const y0 = Math.floor(f / columns) * (k + 1);
    for (let i = 0; i < k * k; i++) {
      const v = kernel[i * filters + f];
      pixels[(y0 + Math.floor(i / k)) * width + x0 + (i % k)] = hi > lo ? Math.round(((v - lo) / (hi - lo)) * 255) : 128;
    }
  }
  return { pixels, height, width };
}

/** A grey mosaic (from {@link filterMosaic}) as one image, `scale` screen pixels a pixel. */
export function mosaicChart(mosaic: { pixels: Uint8Array; height: number; width: number }, title: string, scale = 4): VegaLiteSpec {
  const { pixels, height, width } = mosaic;
  return {
    $schema: VEGA_LITE_SCHEMA,
    title,
    width: width * scale,
    height: height * scale,
    data: { values: [{ url: greyPngDataUrl(pixels, height, width) }] },
    mark: { type: 'image', width: width * scale, height: height * scale, align: 'left', baseline: 'top', smooth: false },
    encoding: { url: { field: 'url', type: 'nominal' }, x: { value: 0 }, y: { value: 0 } },
    config: { view: { stroke: null } },
  };
}

/**
 * A confusion matrix as a heat map: rows the true class, columns the predicted one, each cell
 * coloured by the share of its row and labelled with its count.
 */
export function confusionChart(confusion: number[][], names: readonly string[], title = 'Confusion matrix (test set)'): VegaLiteSpec {
  const values = confusion.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, p) => ({ true: names[t], predicted: names[p], count, share: total === 0 ? 0 : count / total }));
  });
  const order = [...names];
  return {
    $schema: VEGA_LITE_SCHEMA,
    title,
    data: { values },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: order, title: 'predicted class' },
      y: { field: 'true', type: 'nominal', sort: order, title: 'true class' },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: { field: 'share', type: 'quantitative', title: 'share of row', scale: { scheme: 'blues', domain: [0, 1] } },
          tooltip: [{ field: 'true' }, { field: 'predicted' }, { field: 'count' }, { field: 'share', format: '.1%' }],
        },
      },
      {
        mark: { type: 'text', fontSize: 9 },
        encoding: {
          text: { field: 'count' },
          color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
        },
      },
    ],
    config: { axis: { labelAngle: 0 }, axisX: { labelAngle: -40 } },
  };
}

/** A grey image (uint8 pixels, row-major) as a PNG data URL, for image marks and HTML. */
export function greyPngDataUrl(pixels: Uint8Array, height: number, width: number): string {
  return pngDataUrl({ width, height, data: pixels.subarray(0, height * width), channels: 1, depth: 8 });
}

/** An image as a PNG data URL (fast-png encodes; no Node built-in, so it works in a browser too). */
function pngDataUrl(image: { width: number; height: number; data: Uint8Array; channels: number; depth: 8 }): string {
  const bytes = encodePng(image);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `data:image/png;base64,${btoa(binary)}`;
}

/**
 * A row of grey images, each with a title of one or two lines (e.g. "coat\n→ shirt"), from uint8 pixels
 * [count × height × width]. Each image travels as a small PNG data URL.
 */
export function imagesChart(
  pixels: Uint8Array, height: number, width: number, titles: string[], scale = 4,
): VegaLiteSpec {
  const size = height * width;
  const urls = titles.map((_, i) => greyPngDataUrl(pixels.subarray(i * size, (i + 1) * size), height, width));
  return imageGridChart(urls, titles, height * scale, width * scale);
}

/** Space between the panels of an {@link imageGridChart}, and around the whole chart (vega's padding). */
const GRID_SPACING = 24;
const CHART_PADDING = 5;

/** The widest panel (whole px) that lets an {@link imageGridChart} of `columns` panels be at most `chartWidth` px wide. */
export function gridPanelWidth(chartWidth: number, columns: number): number {
  return Math.floor((chartWidth - (columns - 1) * GRID_SPACING - 2 * CHART_PADDING) / columns);
}

/** Images given as data URLs, `columns` to a row, each `height`×`width` px on screen under its title. */
export function imageGridChart(urls: string[], titles: string[], height: number, width: number, columns = 4): VegaLiteSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    data: { values: titles.map((title, i) => ({ order: i, title, url: urls[i] })) },
    facet: { field: 'order', type: 'ordinal', title: null, header: { labelExpr: "''", labelPadding: 0 } },
    columns: Math.min(titles.length, columns),
    spacing: GRID_SPACING,
    padding: CHART_PADDING,
    spec: {
      width,
      height: height + 26,
      layer: [
        {
          mark: { type: 'image', width, height, align: 'left', baseline: 'top', smooth: false },
          encoding: { url: { field: 'url', type: 'nominal' }, x: { value: 0 }, y: { value: 26 } },
        },
        {
          // A title may span lines ('\n'): e.g. the true class over the predicted one.
          mark: { type: 'text', align: 'center', baseline: 'top', fontSize: 10, lineBreak: '\n' },
          encoding: { text: { field: 'title' }, x: { value: width / 2 }, y: { value: 0 } },
        },
      ],
    },
    config: { view: { stroke: null } },
  };
}

/**
 * A grey image with a heat map laid over it: `map` (mapSide², ≥ 0) upsampled bilinearly to the
 * image, from transparent at 0 through red to yellow at `max`; an RGBA PNG data URL.
 */
export function heatOverlayPngDataUrl(grey: Uint8Array, side: number, map: Float32Array, mapSide: number, max: number): string {
  const rgba = new Uint8Array(side * side * 4);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const a = max > 0 ? Math.min(1, upsampled(map, mapSide, (y + 0.5) * mapSide / side - 0.5, (x + 0.5) * mapSide / side - 0.5) / max) : 0;
      const g = grey[y * side + x] * 0.7;
      const o = 4 * (y * side + x);
      rgba[o] = g * (1 - a) + 255 * a;
      rgba[o + 1] = g * (1 - a) + 230 * a * a;
      rgba[o + 2] = g * (1 - a);
      rgba[o + 3] = 255;
    }
  }
  return pngDataUrl({ width: side, height: side, data: rgba, channels: 4, depth: 8 });
}

/** `map` at the fractional cell (i, j), bilinear, clamped at the edges. */
function upsampled(map: Float32Array, n: number, i: number, j: number): number {
  const clamp = (v: number) => Math.min(n - 1, Math.max(0, v));
  const [i0, j0] = [Math.floor(clamp(i)), Math.floor(clamp(j))];
  const [i1, j1] = [Math.min(n - 1, i0 + 1), Math.min(n - 1, j0 + 1)];
  const [di, dj] = [clamp(i) - i0, clamp(j) - j0];
  const at = (a: number, b: number) => map[a * n + b];
  return (1 - di) * ((1 - dj) * at(i0, j0) + dj * at(i0, j1)) + di * ((1 - dj) * at(i1, j0) + dj * at(i1, j1));
}


/**
 * Renders a vega-lite spec to SVG with vega's own renderer, headless (no browser, no canvas).
 * vega and vega-lite are loaded on first use.
 */
export async function vegaLiteToSvg(spec: VegaLiteSpec): Promise<string> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const vega = require('vega') as typeof import('vega');
  const vl = require('vega-lite') as typeof import('vega-lite');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const view = new vega.View(vega.parse(vl.compile(spec as never).spec), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
