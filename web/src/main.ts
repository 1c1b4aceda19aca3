/**
 * The page: a trained NiN (the shipped one, one served by `nin web --model`, one dropped onto
 * the page, or one trained here), an input (a test image, a drawing, a photo) preprocessed by
 * lib/core exactly as the library preprocesses Fashion-MNIST, and what the network does with
 * it: prediction, class maps, every block's activations, the first layer's filters, the
 * confusion matrix of the shipped test images, and training in a Web Worker. The view lives in
 * the URL.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { parseIdx } from '../../lib/core/idx';
import { decodeSplit, FASHION_MNIST_CLASSES, FASHION_MNIST_SIDE, FashionMnistSplit } from '../../lib/core/fashionMnist';
import { shrinkGrey } from '../../lib/core/classMaps';
import { featureMapSize, firstLayerFilters, formatLayerSummary, layerSummary, nin } from '../../lib/core/model';
import { predict, summarize } from '../../lib/core/evaluate';
import { filterMosaic, greyPngDataUrl, heatOverlayPngDataUrl } from '../../lib/core/plots';
import { errorSummary } from '../../lib/core/validate';
import { checkNinModel, NinShape } from '../../lib/frontends/webModel';
import { activations, logitRows, mapSizes, preprocess, preprocessMany, read, Reading, Resized } from './inspect';
import { drawChannels, drawCurves, drawGrey, drawMosaic } from './render';
import { FromWorker, RECIPES, ToWorker } from './protocol';
import { Backend, backendLabel, chooseBackend } from './backend';

type Source = 'shipped' | 'served' | 'dropped' | 'trained';

interface Loaded {
  model: tfl.LayersModel;
  shape: NinShape;
  about: string;
  resized: Resized;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const NAMES = FASHION_MNIST_CLASSES;
const SIDE = FASHION_MNIST_SIDE;
const params = new URLSearchParams(location.search);

const state = {
  source: 'shipped' as Source,
  input: 'test' as 'test' | 'draw' | 'upload',
  index: 0,
  grey: new Uint8Array(SIDE * SIDE) as Uint8Array,
  cls: -1,
  layer: 'block1',
  mapSize: 0,
  cell: undefined as [number, number] | undefined,
  drawn: undefined as Uint8Array | undefined,
};

const models: Partial<Record<Source, Loaded>> = {};
let test: FashionMnistSplit;
let backend: Backend = { name: '', why: '' };
let reading: Reading | undefined;
let confusion: { predicted: number[]; matrix: number[][]; accuracy: number } | undefined;
const timing = { firstPrediction: NaN, lastUpdate: NaN, trainSteps: [] as number[] };

// ---------------------------------------------------------------------------------------------
// Start-up

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function loadTestImages(): Promise<FashionMnistSplit> {
  const [images, labels] = await Promise.all([fetchBytes('assets/data/test-images.idx'), fetchBytes('assets/data/test-labels.idx')]);
  return decodeSplit(parseIdx(images, 'test-images.idx'), parseIdx(labels, 'test-labels.idx'), 'test-images.idx', 'test-labels.idx').split;
}

/** A model from `url` (model.json), checked to be a NiN. */
async function loadModel(load: () => Promise<tfl.LayersModel>, about: (m: tfl.LayersModel, s: NinShape) => string): Promise<Loaded> {
  const model = await load();
  const check = checkNinModel(model);
  if (!check.ok) {
    model.dispose();
    throw new Error(`this is not a NiN the page can show: ${check.problem}`);
  }
  return { model, shape: check.shape, about: about(model, check.shape), resized: new Resized(model, check.shape) };
}

function describeShipped(model: tfl.LayersModel, s: NinShape): string {
  const meta = (model.getUserDefinedMetadata() ?? {}) as { quantization?: string; accuracy?: number };
  const acc = meta.accuracy === undefined ? '' : `, test accuracy ${meta.accuracy.toFixed(3)} on all 10,000 test images`;
  return `shipped: the cpu recipe of 2026-11 (${s.inputSize} px, 6 epochs, batch 64, Adam lr 0.001, seed 1), weights quantised to ${meta.quantization ?? 'uint8'}${acc}`;
}

async function start(): Promise<void> {
  backend = await chooseBackend(location.href, params.get('backend'));
  test = await loadTestImages();
  models.shipped = await loadModel(() => tfl.loadLayersModel('assets/model/model.json'), describeShipped);
  // Only asked for when the URL says so (`nin web --model DIR` opens ?model=served): elsewhere it is not there.
  if (params.get('model') === 'served') try {
    models.served = await loadModel(() => tfl.loadLayersModel('served/model.json'),
      (_, s) => `served by nin web --model (${s.inputSize} px)`);
  } catch (err) {
    $('model-message').textContent = `The served model could not be loaded: ${errorSummary(err)}`;
  }
  readUrl();
  if (!models[state.source]) state.source = 'shipped';
  setupControls();
  $('app').hidden = false;
  await setModel(state.source, false);
  timing.firstPrediction = performance.now();
  setStatus();
}

function setStatus(extra = ''): void {
  const m = models[state.source]!;
  $('status').textContent = `Backend: ${backendLabel(backend.name)} (${backend.why})` +
    ` · model: ${m.about}${extra ? ` · ${extra}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// The URL

function readUrl(): void {
  const src = params.get('model') as Source | null;
  if (src === 'shipped' || src === 'served') state.source = src;
  const img = Number(params.get('img'));
  if (Number.isInteger(img) && img >= 0 && img < test.count) state.index = img;
  const draw = params.get('draw');
  if (draw) {
    try {
      const bytes = Uint8Array.from(atob(draw.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
      if (bytes.length === SIDE * SIDE) { state.drawn = bytes; state.input = 'draw'; }
    } catch { /* ignored: a test image instead */ }
  }
  const cls = Number(params.get('cls') ?? -1);
  if (Number.isInteger(cls) && cls >= 0 && cls < NAMES.length) state.cls = cls;
  state.layer = params.get('layer') ?? state.layer;
  state.mapSize = Number(params.get('mapsize')) || 0;
  const cell = (params.get('cell') ?? '').split('-').map(Number);
  if (cell.length === 2 && cell.every((v) => Number.isInteger(v) && v >= 0 && v < NAMES.length)) state.cell = [cell[0], cell[1]];
}

function writeUrl(): void {
  const p = new URLSearchParams();
  if (params.get('backend')) p.set('backend', params.get('backend')!);
  if (state.source === 'served') p.set('model', 'served');
  if (state.input === 'draw' && state.drawn) {
    p.set('draw', btoa(String.fromCharCode(...state.drawn)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
  } else if (state.input === 'test') {
    p.set('img', String(state.index));
  }
  if (state.cls >= 0) p.set('cls', String(state.cls));
  p.set('layer', state.layer);
  if (state.mapSize) p.set('mapsize', String(state.mapSize));
  if (state.cell) p.set('cell', state.cell.join('-'));
  history.replaceState(null, '', `${location.pathname}?${p.toString()}`);
}

// ---------------------------------------------------------------------------------------------
// Models

async function setModel(source: Source, write = true): Promise<void> {
  state.source = source;
  const m = models[source]!;
  const select = $<HTMLSelectElement>('model-select');
  select.innerHTML = '';
  for (const s of ['shipped', 'served', 'dropped', 'trained'] as Source[]) {
    if (!models[s]) continue;
    const o = document.createElement('option');
    o.value = s;
    o.textContent = { shipped: 'the shipped NiN', served: 'the one nin web serves', dropped: 'the one you loaded', trained: 'the one trained here' }[s];
    select.append(o);
  }
  select.value = source;
  $('model-about').textContent = m.about;
  const sizes = mapSizes(m.shape.inputSize);
  if (!sizes.includes(state.mapSize)) state.mapSize = sizes[0];
  const ms = $<HTMLSelectElement>('map-size');
  ms.innerHTML = '';
  for (const s of sizes) {
    const o = document.createElement('option');
    o.value = String(s);
    const side = featureMapSize(s);
    o.textContent = s === m.shape.inputSize ? `${s} px, the model's own input: ${side}×${side} maps`
      : `${s} px: the input in a ${(s - m.shape.inputSize) / 2}-px black frame, ${side}×${side} maps`;
    ms.append(o);
  }
  ms.value = String(state.mapSize);
  const rows = layerSummary(m.model);
  const ls = $<HTMLSelectElement>('layer-select');
  ls.innerHTML = '';
  for (const r of rows) {
    const o = document.createElement('option');
    o.value = r.name;
    o.textContent = r.name;
    ls.append(o);
  }
  if (!rows.some((r) => r.name === state.layer)) state.layer = rows[0].name;
  ls.value = state.layer;
  $('shape-table').textContent = formatLayerSummary(rows.map((r) => ({ ...r, shapeNCHW: [1, ...r.shapeNCHW.slice(1)] })));
  drawFilters();
  computeConfusion();
  setStatus();
  update(write);
}

function drawFilters(): void {
  const m = models[state.source]!;
  const f = firstLayerFilters(m.model);
  drawMosaic($<HTMLCanvasElement>('filters'), filterMosaic(f.kernel, f.size, f.count, 24), 3);
}

async function loadDropped(files: File[]): Promise<void> {
  const msg = $('model-message');
  msg.className = '';
  const json = files.find((f) => f.name.endsWith('.json'));
  if (!json) {
    msg.textContent = 'No model.json among the files: drop a model folder\'s model.json together with its weight file(s) (weights.bin).';
    return;
  }
  const weights = files.filter((f) => f !== json);
  try {
    const names = (JSON.parse(await json.text()).weightsManifest ?? []).flatMap((g: { paths: string[] }) => g.paths) as string[];
    const missing = names.filter((n) => !weights.some((w) => w.name === n.split('/').pop()));
    if (missing.length > 0) throw new Error(`${json.name} needs ${missing.join(', ')}: drop ${missing.length === 1 ? 'it' : 'them'} together with it`);
    const loaded = await loadModel(() => tfl.loadLayersModel(tf.io.browserFiles([json, ...weights])),
      (_, s) => `loaded from ${json.name} (${s.inputSize} px, ${s.oneByOneCount} 1×1 convolutions a block)`);
    if (models.dropped) disposeLoaded(models.dropped);
    models.dropped = loaded;
    msg.className = 'ok';
    msg.textContent = `Loaded: a ${loaded.shape.inputSize}-px NiN.`;
    await setModel('dropped');
  } catch (err) {
    msg.textContent = `Could not use that model: ${errorSummary(err)}`;
  }
}

function disposeLoaded(m: Loaded): void {
  m.resized.reset();
  m.model.dispose();
}

// ---------------------------------------------------------------------------------------------
// The input and what the network makes of it

function currentGrey(): Uint8Array {
  if (state.input === 'test') {
    return test.images.slice(state.index * SIDE * SIDE, (state.index + 1) * SIDE * SIDE);
  }
  if (state.input === 'draw' && state.drawn) return state.drawn;
  return state.grey;
}

function update(write = true): void {
  const t0 = performance.now();
  const m = models[state.source]!;
  state.grey = currentGrey();
  drawGrey($<HTMLCanvasElement>('grey28'), state.grey, SIDE, SIDE);
  const xs = preprocess(state.grey, m.shape.inputSize);
  drawGrey($<HTMLCanvasElement>('netInput'), xs.dataSync(), m.shape.inputSize, m.shape.inputSize, true);
  $('net-input-caption').textContent = `as the network gets it: ${m.shape.inputSize}×${m.shape.inputSize} (bilinear, half-pixel centres)`;
  $('input-note').textContent = state.input === 'test'
    ? `Test image ${state.index}: a ${NAMES[test.labels[state.index]]}.`
    : state.input === 'draw' ? 'Your drawing, averaged down to 28×28.' : 'Your photo: grey, square, averaged down to 28×28.';
  reading = read(m.model, m.resized, m.shape, state.grey, state.mapSize);
  showPrediction(reading);
  showMaps(reading);
  showActivations(m, xs);
  xs.dispose();
  showThumbs();
  timing.lastUpdate = performance.now() - t0;
  if (write) writeUrl();
}

function showPrediction(r: Reading): void {
  const top = r.probs.indexOf(Math.max(...r.probs));
  const truth = state.input === 'test' ? test.labels[state.index] : undefined;
  $('prediction-summary').textContent = `The network says ${NAMES[top]} (${(r.probs[top] * 100).toFixed(1)} %)` +
    (truth === undefined ? '.' : truth === top ? ', and it is one.' : `, but it is a ${NAMES[truth]}.`);
  const list = $('probabilities');
  list.innerHTML = '';
  r.probs.forEach((p, k) => {
    const li = document.createElement('li');
    if (k === top) li.className = 'top';
    const bar = Object.assign(document.createElement('span'), { className: 'bar' });
    bar.style.width = `${Math.max(0.5, p * 100).toFixed(1)}%`;
    const cell = document.createElement('span');
    cell.append(bar);
    li.append(Object.assign(document.createElement('span'), { textContent: NAMES[k] }), cell,
      Object.assign(document.createElement('span'), { textContent: `${(p * 100).toFixed(1)} %` }));
    list.append(li);
  });
}

function showMaps(r: Reading): void {
  const m = models[state.source]!;
  const own = r.mapSize === m.shape.inputSize;
  $('map-size-note').textContent = own
    ? (r.mapSide === 1 ? `At ${r.mapSize} px each map is a single value: the map is the score.` : '')
    : `NiN is convolutional up to the pooling, so the same weights read the input in a black frame (Fashion-MNIST's background), ` +
      `${r.mapSize} px in all: the clothes keep their size and the maps get room to show where. The scores here are that reading's, ` +
      'and they differ from the prediction above: the network never saw a frame, and the black border draws responses of its own.';
  const max = Math.max(0, ...r.maps.map((mp) => Math.max(...mp)));
  const box = $('maps');
  box.innerHTML = '';
  r.maps.forEach((map, k) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.setAttribute('aria-pressed', String(state.cls === k));
    b.setAttribute('aria-label', `${NAMES[k]}: map mean ${r.mapMeans[k].toFixed(4)}, class score ${r.mapScores[k].toFixed(4)}`);
    const img = document.createElement('img');
    img.alt = '';
    img.src = heatOverlayPngDataUrl(r.mapInput, r.mapSize, map, r.mapSide, max);
    b.append(img);
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = NAMES[k];
    const nums = document.createElement('div');
    nums.className = 'nums';
    nums.textContent = `mean ${r.mapMeans[k].toFixed(3)} = score ${r.mapScores[k].toFixed(3)}`;
    b.append(name, nums);
    b.onclick = () => { state.cls = state.cls === k ? -1 : k; showMaps(r); writeUrl(); };
    box.append(b);
  });
}

function showActivations(m: Loaded, xs: tf.Tensor4D): void {
  const { rows, outputs } = activations(m.model, xs);
  const i = Math.max(0, rows.findIndex((r) => r.name === state.layer));
  const shape = rows[i].shapeNCHW;
  $('layer-shape').textContent = `output shape (N, C, H, W) = (1, ${shape.slice(1).join(', ')})` +
    (state.layer === 'dropout' ? ': dropout passes everything through when not training' : '');
  drawChannels($<HTMLCanvasElement>('activations'), outputs[i].data, outputs[i].shape, Math.min(1040, document.body.clientWidth - 60));
}

function thumb(index: number, label: string, pressed: boolean, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.setAttribute('aria-label', label);
  b.setAttribute('aria-pressed', String(pressed));
  const img = document.createElement('img');
  img.alt = '';
  img.src = greyPngDataUrl(test.images.subarray(index * SIDE * SIDE, (index + 1) * SIDE * SIDE), SIDE, SIDE);
  b.append(img);
  b.onclick = onClick;
  return b;
}

function showThumbs(): void {
  const box = $('thumbs');
  box.innerHTML = '';
  const first = Math.floor(state.index / 12) * 12;
  for (let i = first; i < Math.min(test.count, first + 12); i++) {
    box.append(thumb(i, `test image ${i}, a ${NAMES[test.labels[i]]}`, state.input === 'test' && i === state.index, () => selectTest(i)));
  }
}

function selectTest(i: number): void {
  state.input = 'test';
  state.index = Math.max(0, Math.min(test.count - 1, i));
  $<HTMLInputElement>('image-index').value = String(state.index);
  update();
}

// ---------------------------------------------------------------------------------------------
// Where it errs

function computeConfusion(): void {
  const m = models[state.source]!;
  const predicted = predict(m.model, test, m.shape.inputSize, test.count, 100);
  const s = summarize(test.labels, predicted);
  confusion = { predicted, matrix: s.confusion, accuracy: s.accuracy };
  $('confusion-summary').textContent = `On the ${test.count.toLocaleString('en-US')} shipped test images this model is right ` +
    `${(s.accuracy * 100).toFixed(1)} % of the time. Rows: the true class; columns: the predicted one. Pick a cell to see its images.`;
  const table = $('confusion') as HTMLTableElement;
  table.innerHTML = '';
  const head = table.createTHead().insertRow();
  head.append(Object.assign(document.createElement('th'), { textContent: 'true \\ predicted' }));
  NAMES.forEach((n) => head.append(Object.assign(document.createElement('th'), { textContent: n.replace('ankle boot', 'boot'), scope: 'col' })));
  const body = table.createTBody();
  s.confusion.forEach((row, t) => {
    const tr = body.insertRow();
    tr.append(Object.assign(document.createElement('th'), { textContent: NAMES[t], scope: 'row', className: 'rowh' }));
    const rowSum = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, p) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = String(count);
      b.setAttribute('aria-label', `${count} ${NAMES[t]} image${count === 1 ? '' : 's'} predicted as ${NAMES[p]}`);
      b.setAttribute('aria-pressed', String(state.cell?.[0] === t && state.cell?.[1] === p));
      const share = count / rowSum;
      b.style.background = t === p ? `rgba(26, 95, 180, ${0.15 + 0.6 * share})` : count === 0 ? '#fff' : `rgba(179, 71, 11, ${0.15 + 0.85 * Math.min(1, share * 3)})`;
      b.style.color = share > 0.5 ? '#fff' : '#000';
      b.onclick = () => { state.cell = [t, p]; computeCellList(); table.querySelectorAll('button').forEach((x) => x.setAttribute('aria-pressed', String(x === b))); writeUrl(); };
      tr.insertCell().append(b);
    });
  });
  computeCellList();
}

function computeCellList(): void {
  const box = $('cell-images');
  box.innerHTML = '';
  if (!state.cell || !confusion) return;
  const [t, p] = state.cell;
  const hits = confusion.predicted.map((q, i) => (test.labels[i] === t && q === p ? i : -1)).filter((i) => i >= 0);
  $('cell-title').textContent = `${hits.length} ${NAMES[t]} image${hits.length === 1 ? '' : 's'} predicted as ${NAMES[p]}` +
    (hits.length > 60 ? ' (the first 60)' : '');
  for (const i of hits.slice(0, 60)) {
    box.append(thumb(i, `test image ${i}: open its maps and activations`, false, () => {
      selectTest(i);
      $('maps-section').scrollIntoView({ behavior: 'smooth' });
    }));
  }
}

// ---------------------------------------------------------------------------------------------
// Drawing and uploading

const ink = document.createElement('canvas');
ink.width = 280;
ink.height = 280;

function setupPad(): void {
  const pad = $<HTMLCanvasElement>('pad');
  const ictx = ink.getContext('2d', { willReadFrequently: true })!;
  ictx.fillStyle = '#000';
  ictx.fillRect(0, 0, 280, 280);
  if (state.drawn) { // a drawing from the URL, shown blocky
    const tmp = document.createElement('canvas');
    drawGrey(tmp, state.drawn, SIDE, SIDE);
    ictx.imageSmoothingEnabled = false;
    ictx.drawImage(tmp, 0, 0, 280, 280);
  }
  const cursor = { x: 140, y: 140, down: false, visible: false };
  let last: { x: number; y: number } | undefined;
  const show = () => {
    const ctx = pad.getContext('2d')!;
    ctx.drawImage(ink, 0, 0);
    if (cursor.visible) {
      ctx.strokeStyle = cursor.down ? '#f80' : '#4af';
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(cursor.x, cursor.y, brush() / 2, 0, 2 * Math.PI);
      ctx.stroke();
    }
  };
  const brush = () => Number($<HTMLInputElement>('brush').value);
  const line = (a: { x: number; y: number }, b: { x: number; y: number }) => {
    ictx.strokeStyle = '#fff';
    ictx.fillStyle = '#fff';
    ictx.lineWidth = brush();
    ictx.lineCap = 'round';
    ictx.beginPath();
    ictx.moveTo(a.x, a.y);
    ictx.lineTo(b.x, b.y);
    ictx.stroke();
  };
  const at = (e: PointerEvent) => {
    const r = pad.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * 280, y: ((e.clientY - r.top) / r.height) * 280 };
  };
  pad.addEventListener('pointerdown', (e) => { pad.setPointerCapture(e.pointerId); last = at(e); line(last, last); show(); e.preventDefault(); });
  pad.addEventListener('pointermove', (e) => { if (!last) return; const p = at(e); line(last, p); last = p; show(); });
  const end = () => { if (last) { last = undefined; useDrawing(); } };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
  pad.addEventListener('focus', () => { cursor.visible = true; show(); });
  pad.addEventListener('blur', () => { cursor.visible = false; if (cursor.down) { cursor.down = false; useDrawing(); } show(); });
  pad.addEventListener('keydown', (e) => {
    const step = e.shiftKey ? 4 : 14;
    const moves: Record<string, [number, number]> = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) {
      const from = { x: cursor.x, y: cursor.y };
      cursor.x = Math.max(0, Math.min(280, cursor.x + moves[e.key][0]));
      cursor.y = Math.max(0, Math.min(280, cursor.y + moves[e.key][1]));
      if (cursor.down) line(from, cursor);
    } else if (e.key === ' ') {
      cursor.down = !cursor.down;
      if (cursor.down) line(cursor, cursor); else useDrawing();
    } else if (e.key === 'Delete' || e.key === 'Backspace') {
      clear();
    } else if (e.key === 'Enter') {
      useDrawing();
    } else {
      return;
    }
    e.preventDefault();
    show();
  });
  const clear = () => { ictx.fillStyle = '#000'; ictx.fillRect(0, 0, 280, 280); show(); };
  $('clear-pad').onclick = clear;
  $('use-pad').onclick = () => useDrawing();
  show();
}

/** The ink's pixels, grey 0–255 (the red channel of a white-on-black drawing). */
function padPixels(): Uint8Array {
  const d = ink.getContext('2d', { willReadFrequently: true })!.getImageData(0, 0, 280, 280).data;
  return Uint8Array.from({ length: 280 * 280 }, (_, i) => d[4 * i]);
}

function useDrawing(): void {
  state.drawn = shrinkGrey(padPixels(), 280, SIDE); // lib/core: each pixel the mean of the area it covers
  state.input = 'draw';
  update();
}

/** A photo as Fashion-MNIST shows clothes: grey, square (padded with its own background), light on dark, 28×28. */
async function useUpload(file: File): Promise<void> {
  const msg = $('input-note');
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    msg.textContent = `${file.name} is not an image this browser can read.`;
    return;
  }
  // Pixels are only averaged (lib/core's shrinkGrey); a very large photo is first drawn at 1,008 px (36 × 28).
  const limit = 36 * SIDE;
  const scale = Math.min(1, limit / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * scale));
  const h = Math.max(1, Math.round(bitmap.height * scale));
  const side = Math.max(w, h, SIDE);
  const c = document.createElement('canvas');
  c.width = side;
  c.height = side;
  const ctx = c.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0, w, h);
  const corner = ctx.getImageData(0, 0, 1, 1).data;
  ctx.fillStyle = `rgb(${corner[0]}, ${corner[1]}, ${corner[2]})`;
  ctx.fillRect(0, 0, side, side);
  ctx.drawImage(bitmap, Math.floor((side - w) / 2), Math.floor((side - h) / 2), w, h);
  const rgba = ctx.getImageData(0, 0, side, side).data;
  const grey = Uint8Array.from({ length: side * side }, (_, i) => Math.round(0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]));
  let border = 0;
  for (let i = 0; i < side; i++) border += grey[i] + grey[(side - 1) * side + i] + grey[i * side] + grey[i * side + side - 1];
  const light = border / (4 * side) > 127;
  const mode = $<HTMLSelectElement>('invert').value;
  const invert = mode === 'yes' || (mode === 'auto' && light);
  if (invert) for (let i = 0; i < grey.length; i++) grey[i] = 255 - grey[i];
  state.grey = side === SIDE ? grey : shrinkGrey(grey, side, SIDE);
  state.input = 'upload';
  update();
  msg.textContent = `Your photo (${bitmap.width}×${bitmap.height}): grey, padded square, ${invert ? 'inverted, ' : ''}averaged down to 28×28.`;
}

// ---------------------------------------------------------------------------------------------
// Training in a worker

let worker: Worker | undefined;
const run = { losses: [] as number[], accs: [] as number[], stepsPerEpoch: 1, lastStep: 0, running: false, pendingWeights: false };

function setupTraining(): void {
  const recipe = $<HTMLSelectElement>('recipe');
  for (const r of RECIPES) {
    const o = document.createElement('option');
    o.value = r.id;
    o.textContent = r.label;
    recipe.append(o);
  }
  const explain = () => { $('train-explain').textContent = `${RECIPES.find((r) => r.id === recipe.value)!.explain} ` +
    'Training runs in a Web Worker with the library\'s own loop (lib/training/loop.ts); the page switches to the model being trained, ' +
    'and its maps, activations and filters follow it as it learns.'; };
  recipe.onchange = explain;
  explain();
  const send = (m: ToWorker) => worker!.postMessage(m);
  $('train-start').onclick = () => {
    ensureWorker();
    run.losses = [];
    run.accs = [];
    run.running = true;
    buttons();
    $('train-status').textContent = 'Starting: loading the shipped training images…';
    send({ type: 'start', recipe: recipe.value, seed: 1 });
  };
  $('train-stop').onclick = () => { send({ type: 'stop' }); $('train-status').textContent = 'Stopping after this step…'; };
  $('train-resume').onclick = () => { run.running = true; buttons(); send({ type: 'resume' }); };
}

function buttons(): void {
  $<HTMLButtonElement>('train-stop').disabled = !run.running;
  $<HTMLButtonElement>('train-resume').disabled = run.running || !models.trained || run.lastStep === 0;
}

function ensureWorker(): void {
  if (worker) return;
  worker = new Worker(`worker.js${params.get('backend') ? `?backend=${params.get('backend')}` : ''}`);
  worker.onmessage = (e: MessageEvent<FromWorker>) => onWorker(e.data);
}

let lastBatchAt = 0;
let workerBackend: Backend = { name: '', why: '' };

function onWorker(m: FromWorker): void {
  const status = $('train-status');
  if (m.type === 'ready') {
    workerBackend = m.backend;
  } else if (m.type === 'started') {
    run.stepsPerEpoch = m.stepsPerEpoch;
    run.lastStep = 0;
    const model = nin(m.model);
    const check = checkNinModel(model);
    if (models.trained) disposeLoaded(models.trained);
    if (!check.ok) throw new Error(check.problem);
    models.trained = { model, shape: check.shape, about: `trained here (${m.config.resize} px, ${m.config.optimizer} lr ${m.config.lr}, batch ${m.config.batchSize})`, resized: new Resized(model, check.shape) };
    lastBatchAt = performance.now();
  } else if (m.type === 'batch') {
    const now = performance.now();
    if (run.losses.length > 0) timing.trainSteps.push(now - lastBatchAt);
    lastBatchAt = now;
    run.losses.push(m.info.loss);
    run.lastStep++;
    status.textContent = `Training on ${backendLabel(workerBackend.name)}: epoch ${m.info.epoch}, step ${m.info.batch + 1} of ${m.info.numBatches}, loss ${m.info.loss.toFixed(3)}`;
    drawCurves($<HTMLCanvasElement>('curves'), run.losses, run.stepsPerEpoch, run.accs);
  } else if (m.type === 'epoch') {
    run.accs.push(m.result.testAcc);
    drawCurves($<HTMLCanvasElement>('curves'), run.losses, run.stepsPerEpoch, run.accs);
  } else if (m.type === 'weights') {
    const t = models.trained;
    if (!t) return;
    const tensors = m.weights.map((w) => tf.tensor(w.data, w.shape));
    t.model.setWeights(tensors);
    tf.dispose(tensors);
    t.resized.reset();
    if (state.source !== 'trained') void setModel('trained');
    else { drawFilters(); update(false); }
  } else if (m.type === 'stopped') {
    run.running = false;
    buttons();
    status.textContent = `${m.finished ? 'Finished' : 'Stopped'} (${m.where}); on ${backendLabel(workerBackend.name)}. ` +
      (m.finished ? 'Start again for a new run.' : 'Resume continues from here.');
    if (models.trained && state.source === 'trained') computeConfusion();
  } else if (m.type === 'error') {
    run.running = false;
    buttons();
    status.textContent = `Training stopped: ${m.message}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Controls

function setupControls(): void {
  $<HTMLSelectElement>('model-select').onchange = (e) => void setModel((e.target as HTMLSelectElement).value as Source);
  $<HTMLInputElement>('image-index').value = String(state.index);
  $<HTMLInputElement>('image-index').onchange = (e) => selectTest(Number((e.target as HTMLInputElement).value) || 0);
  $('prev-image').onclick = () => selectTest(state.index - 1);
  $('next-image').onclick = () => selectTest(state.index + 1);
  $<HTMLSelectElement>('map-size').onchange = (e) => { state.mapSize = Number((e.target as HTMLSelectElement).value); update(); };
  $<HTMLSelectElement>('layer-select').onchange = (e) => { state.layer = (e.target as HTMLSelectElement).value; update(); };
  $<HTMLInputElement>('upload').onchange = (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void useUpload(f);
  };
  $<HTMLSelectElement>('invert').onchange = () => {
    const f = $<HTMLInputElement>('upload').files?.[0];
    if (f && state.input === 'upload') void useUpload(f);
  };
  const files = $<HTMLInputElement>('model-files');
  files.onchange = () => void loadDropped(Array.from(files.files ?? []));
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    void loadDropped(Array.from(e.dataTransfer?.files ?? []));
  });
  setupPad();
  setupTraining();
}

// ---------------------------------------------------------------------------------------------
// For the tests (test/web/page.test.ts): the same code paths the page's views use.

const hooks = {
  ready: undefined as unknown as Promise<void>,
  backend: () => backend.name,
  timing: () => ({ ...timing }),
  numTensors: () => tf.memory().numTensors,
  state: () => ({ ...state, grey: Array.from(state.grey) }),
  /** Logits of shipped test images first..first+count-1, as the page's views compute them. */
  logits: (first: number, count: number) => {
    const m = models[state.source]!;
    const xs = preprocessMany(test, first, count, m.shape.inputSize);
    const rows = logitRows(m.model, xs);
    xs.dispose();
    return rows;
  },
  reading: () => reading && { logits: reading.logits, mapMeans: reading.mapMeans, mapScores: reading.mapScores, mapSize: reading.mapSize },
  /** The input tensor the network got for the current image. */
  input: () => {
    const m = models[state.source]!;
    const xs = preprocess(state.grey, m.shape.inputSize);
    const out = { grey: Array.from(state.grey), tensor: Array.from(xs.dataSync()), size: m.shape.inputSize };
    xs.dispose();
    return out;
  },
  padPixels: () => Array.from(padPixels()),
  setMapSize: (s: number) => { state.mapSize = s; update(); },
  selectTest,
  update: () => update(false),
  modelSources: () => Object.keys(models),
  trainLosses: () => [...run.losses],
  trainBackend: () => workerBackend.name,
};
(window as unknown as { ninPage: typeof hooks }).ninPage = hooks;
hooks.ready = start().catch((err) => {
  $('status').textContent = `The page could not start: ${errorSummary(err)}`;
  console.error(err);
  throw err;
});
