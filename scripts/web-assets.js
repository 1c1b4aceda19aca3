#!/usr/bin/env node
// Makes the web page's shipped assets (web/assets/) from a trained checkpoint and Fashion-MNIST:
//
//   node scripts/web-assets.js --model /tmp/web-model-run [--quantize uint8|float16|none] [--accuracy X]
//
// - web/assets/model/model.json + weights.bin: the checkpoint's weights in TensorFlow.js's own
//   quantisation format (each tensor affine-quantised to uint8: v = q * scale + min, one scale
//   and min per tensor, written in the weight manifest's `quantization` field; tf.loadLayersModel
//   and the library's loadModelFromDir decode it). `nin eval --model web/assets/model` measures it.
// - web/assets/data/: the first 1,000 test images and labels and the first 2,000 training images
//   and labels of Fashion-MNIST (MIT licence, Zalando SE), as IDX files (the format of the
//   originals, decoded in the page by the library's parseIdx/decodeSplit).
//
// Needs `npm run build` first (it uses dist/lib).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const lib = require(path.join(root, 'dist', 'lib'));

const TEST_SAMPLE = 1000;
const TRAIN_SAMPLE = 2000;

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** One tensor's bytes and its manifest entry, quantised as asked. */
function encode(name, tensor, kind) {
  const values = tensor.dataSync();
  const spec = { name, shape: tensor.shape, dtype: 'float32' };
  if (kind === 'none') return { spec, bytes: new Uint8Array(Float32Array.from(values).buffer) };
  if (kind === 'float16') {
    const out = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = toHalf(values[i]);
    return { spec: { ...spec, quantization: { dtype: 'float16' } }, bytes: new Uint8Array(out.buffer) };
  }
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) { if (v < min) min = v; if (v > max) max = v; }
  const scale = max > min ? (max - min) / 255 : 1;
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.round((values[i] - min) / scale);
  return { spec: { ...spec, quantization: { dtype: 'uint8', scale, min } }, bytes: out };
}

/** IEEE half precision of `v`, rounded to nearest. */
function toHalf(v) {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  let exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    return sign | ((mant + (1 << (shift - 1))) >> shift);
  }
  if (exp >= 31) return sign | 0x7c00;
  mant += 0x1000;
  if (mant & 0x800000) { mant = 0; exp++; }
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | (mant >> 13);
}

function idx(magic, dims, data) {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

async function main() {
  const modelDir = arg('--model');
  const kind = arg('--quantize', 'uint8');
  if (!modelDir) throw new Error('usage: node scripts/web-assets.js --model CHECKPOINT_DIR [--quantize uint8|float16|none]');
  await lib.selectBackend('cpu');
  const loaded = await lib.loadModelFromDir(modelDir);
  const model = loaded.model;
  const out = path.join(root, 'web', 'assets', 'model');
  fs.mkdirSync(out, { recursive: true });
  const parts = model.weights.map((w) => encode(w.originalName, w.read(), kind));
  const weights = Buffer.concat(parts.map((p) => Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength)));
  let topology;
  await model.save(require('@tensorflow/tfjs-core').io.withSaveHandler(async (a) => {
    topology = a.modelTopology;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const state = loaded.state;
  const json = {
    format: 'layers-model', generatedBy: 'nin-tfjs scripts/web-assets.js', convertedBy: null,
    modelTopology: topology,
    weightsManifest: [{ paths: ['weights.bin'], weights: parts.map((p) => p.spec) }],
    userDefinedMetadata: {
      quantization: kind,
      source: state ? { epochsCompleted: state.epochsCompleted, train: state.train, model: state.model,
        testAcc: state.history?.[state.history.length - 1]?.testAcc } : undefined,
      accuracy: arg('--accuracy') === undefined ? undefined : Number(arg('--accuracy')),
    },
  };
  fs.writeFileSync(path.join(out, 'weights.bin'), weights);
  fs.writeFileSync(path.join(out, 'model.json'), `${JSON.stringify(json)}\n`);
  console.log(`model: ${weights.length.toLocaleString('en-US')} bytes of weights (${kind}) in ${out}`);

  const d = await lib.loadFashionMnist({ download: false });
  const data = path.join(root, 'web', 'assets', 'data');
  fs.mkdirSync(data, { recursive: true });
  const write = (name, split, n) => {
    const s = lib.sliceSplit(split, 0, n);
    fs.writeFileSync(path.join(data, `${name}-images.idx`), idx(lib.IDX_IMAGES_MAGIC, [s.count, s.height, s.width], s.images));
    fs.writeFileSync(path.join(data, `${name}-labels.idx`), idx(lib.IDX_LABELS_MAGIC, [s.count], s.labels));
  };
  write('test', d.test, TEST_SAMPLE);
  write('train', d.train, TRAIN_SAMPLE);
  console.log(`data: the first ${TEST_SAMPLE} test and ${TRAIN_SAMPLE} training images of Fashion-MNIST in ${data}`);
}

main().catch((err) => { console.error(err); process.exit(1); });
