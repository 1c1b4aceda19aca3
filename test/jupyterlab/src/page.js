/**
 * A page that shows notebook outputs with JupyterLab 4's own code: its rendermime registry
 * with the standard renderers, the vega5 extension that JupyterLab ships, optionally the
 * plotly mime renderer (jupyterlab-plotly), and JupyterLab's OutputArea, which picks the
 * mimetype, applies trust and handles display ids. test/jupyterlab.test.ts bundles it with
 * esbuild and drives it in headless Chromium through `window.lab`.
 */
import { RenderMimeRegistry, standardRendererFactories } from '@jupyterlab/rendermime';
import { OutputArea, OutputAreaModel } from '@jupyterlab/outputarea';
import { Widget } from '@lumino/widgets';
import vegaExtension from '@jupyterlab/vega5-extension';
import plotlyExtensions from 'jupyterlab-plotly/lib/plotly-renderer';
import '@jupyterlab/rendermime/style/index.css';
import '@jupyterlab/outputarea/style/index.css';
import '@jupyterlab/vega5-extension/style/index.css';

/** A registry as JupyterLab's rendermime plugin builds it: standard factories, then each mime extension at its rank. */
function registry(withPlotly) {
  const rendermime = new RenderMimeRegistry({ initialFactories: standardRendererFactories });
  const extensions = [vegaExtension, withPlotly ? plotlyExtensions : []].flat();
  for (const extension of extensions) rendermime.addFactory(extension.rendererFactory, extension.rank);
  return rendermime;
}

/** Each shown OutputArea, by the section that holds it. */
const areas = new Map();

function section(title) {
  const host = document.createElement('section');
  host.className = 'nin-cell';
  const heading = document.createElement('h3');
  heading.textContent = title;
  host.appendChild(heading);
  document.body.appendChild(host);
  return host;
}

/** One OutputArea per code cell, holding the cell's saved outputs, as a notebook shows them when opened. */
function showCells(cells, { plotly, trusted }) {
  const rendermime = registry(plotly);
  cells.forEach((outputs, index) => {
    const model = new OutputAreaModel({ values: outputs, trusted });
    const area = new OutputArea({ model, rendermime });
    const host = section(`cell ${index}`);
    Widget.attach(area, host);
    areas.set(host, area);
  });
}

/**
 * One OutputArea per cell, fed the kernel's iopub messages in the order they came, through
 * the same handler JupyterLab attaches to a running cell's future. As in a live session, each
 * message waits for the charts of the one before to be drawn (a renderer may treat a chart
 * it has already drawn differently from one still loading).
 */
async function replay(cells, { plotly }) {
  const rendermime = registry(plotly);
  for (const [index, messages] of cells.entries()) {
    const area = new OutputArea({ model: new OutputAreaModel({ trusted: true }), rendermime });
    const host = section(`cell ${index} (replayed)`);
    Widget.attach(area, host);
    areas.set(host, area);
    const future = { done: new Promise(() => {}), dispose() {} };
    area.future = future;
    for (const msg of messages) {
      future.onIOPub(msg);
      await settle(10000, 100);
    }
  }
}

const inked = (canvas) => {
  const { width, height } = canvas;
  if (!width || !height) return 0;
  const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let ink = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i + 3] > 0 && (pixels[i] < 235 || pixels[i + 1] < 235 || pixels[i + 2] < 235)) ink += 1;
  }
  return ink / (width * height);
};

/** What one rendered output shows: which renderer drew it, and whether it holds a drawing. */
function describeOutput(node) {
  const mime = node.getAttribute('data-mime-type') ?? '';
  const text = node.textContent ?? '';
  const error = mime === 'application/vnd.jupyter.stderr' || /Javascript Error/.test(text);
  const canvases = [...node.querySelectorAll('canvas')];
  const vegaMarks = node.querySelectorAll('.vega-embed svg .mark-line path, .vega-embed svg .mark-rect path, ' +
    '.vega-embed svg .mark-symbol path, .vega-embed svg .mark-image image').length;
  const plotlyTraces = node.querySelectorAll('.plot-container .main-svg .trace path').length;
  const plotlyPoints = node.querySelectorAll('.plot-container .scatterlayer .points path').length;
  const images = [...node.querySelectorAll('img')];
  return {
    mime, error,
    jsonText: /^\s*[{[]/.test(text) && /"(data|layout|\$schema|mark)"/.test(text),
    vegaInk: canvases.length ? Math.max(...canvases.map(inked)) : 0,
    vegaMarks, plotlyTraces, plotlyPoints,
    imagesDrawn: images.filter((img) => img.complete && img.naturalWidth > 0).length,
    tableRows: node.querySelectorAll('table tr').length,
    text: text.slice(0, 120),
  };
}

/** Waits until no output is still being drawn (vega and plotly render asynchronously). */
async function settle(ms = 30000, poll = 400) {
  const until = Date.now() + ms;
  let last = '';
  for (;;) {
    await new Promise((r) => setTimeout(r, poll));
    const now = document.body.innerHTML.length + ':' + [...document.querySelectorAll('canvas')].map((c) => c.width).join();
    if ((now === last && !document.querySelector('.jp-RenderedVegaCommon5:empty')) || Date.now() > until) return;
    last = now;
  }
}

const plainText = (output) => {
  const text = output.output_type === 'stream' ? output.text : output.data?.['text/plain'];
  return Array.isArray(text) ? text.join('') : text ?? '';
};

/** Each section's outputs as drawn, and the text/plain of what its OutputArea's model holds. */
function inspect() {
  return [...document.querySelectorAll('section.nin-cell')].map((host) => ({
    title: host.querySelector('h3').textContent,
    // Each child holds a prompt and the output widget; a renderer that failed has replaced the
    // widget's classes with an error's, so it is found by position, not by class.
    outputs: [...host.querySelectorAll('.jp-OutputArea-child')].map((child) => describeOutput(child.lastElementChild)),
    plain: areas.get(host).model.toJSON().map(plainText),
  }));
}

window.lab = { showCells, replay, settle, inspect };
