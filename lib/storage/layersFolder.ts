/**
 * A layers model in a folder: `model.json` (topology + weights manifest) and `weights.bin`,
 * the standard TensorFlow.js layers format that `tf.loadLayersModel` reads from files, HTTP
 * or memory. Loading checks what it reads: the files are regular files (never a FIFO that
 * would block), the weight files stay inside the folder, their sizes match the manifest, their
 * SHA-256 match a checkpoint's record when there is one, and no weight is NaN or infinite.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Checksums, Fix, fixError, isObject, parseJson, readRegularFile, sha256, verifyChecksum, writeSynced } from './files';
import { nonFiniteWeights } from '../core/health';
import { errorSummary } from '../core/validate';

/** A model's topology and weights manifest. */
export const MODEL_FILE = 'model.json';
/** The weights, as model.json's manifest describes them. */
export const WEIGHTS_FILE = 'weights.bin';

/** The standard model.json of a layers model (what tfjs's own file and HTTP handlers write). */
function modelJson(artifacts: tf.io.ModelArtifacts): tf.io.ModelJSON {
  const json: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as object,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
  };
  if (artifacts.trainingConfig != null) json.trainingConfig = artifacts.trainingConfig;
  if (artifacts.userDefinedMetadata != null) json.userDefinedMetadata = artifacts.userDefinedMetadata;
  return json;
}

/** What {@link saveLayersModel} wrote: bytes in all, and the SHA-256 of each file by name. */
export interface SavedFiles {
  bytes: number;
  sha256: Checksums;
}

/**
 * Writes `model` as `folder/model.json` + `folder/weights.bin`, fsyncing both. Returns the
 * bytes written and the files' SHA-256.
 */
export async function saveLayersModel(model: tfl.LayersModel, folder: string): Promise<SavedFiles> {
  fs.mkdirSync(folder, { recursive: true });
  let bytes = 0;
  const sums: Checksums = {};
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weights = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
    const json = `${JSON.stringify(modelJson(artifacts))}\n`;
    writeSynced(path.join(folder, WEIGHTS_FILE), new Uint8Array(weights));
    writeSynced(path.join(folder, MODEL_FILE), json);
    bytes = weights.byteLength + Buffer.byteLength(json);
    sums[MODEL_FILE] = sha256(json);
    sums[WEIGHTS_FILE] = sha256(new Uint8Array(weights));
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  }));
  return { bytes, sha256: sums };
}

/** Bytes a weight takes in weights.bin (quantized weights take their storage type's size). */
function weightBytes(spec: tf.io.WeightsManifestEntry): number {
  const size: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, int16: 2, complex64: 8 };
  const count = spec.shape.reduce((a, b) => a * b, 1);
  return count * (size[spec.quantization?.dtype ?? spec.dtype] ?? 4);
}

/** The weight file `name` of model.json, refused when it would lead outside `folder`. */
function weightsPath(folder: string, name: unknown, file: string, fix: Fix): string {
  const resolved = path.resolve(folder, String(name));
  const inside = path.relative(folder, resolved);
  if (typeof name !== 'string' || inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) {
    throw fixError(`${file} names the weight file ${JSON.stringify(name)}, which is not inside ${folder}; ` +
      'weight files must sit beside model.json', fix);
  }
  return resolved;
}

/** How a checkpoint's record of SHA-256 is checked: the sums, the file they were read from, and what to do on a mismatch. */
export interface Expected {
  sums: Checksums;
  recordedIn: string;
  /** What to do when a file does not match (default: the loader's `fix`). */
  fix?: Fix;
}

/** The manifest's weight specs and the bytes of its files, checked against each other. */
function readWeights(folder: string, file: string, manifest: tf.io.WeightsManifestConfig, fix: Fix, expected?: Expected) {
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  const files: [string, Buffer][] = [];
  for (const group of manifest) {
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw fixError(`${file} has a malformed weightsManifest entry (it needs "paths" and "weights")`, fix);
    }
    for (const p of group.paths) {
      const weightsFile = weightsPath(folder, p, file, fix);
      const bytes = readRegularFile(weightsFile, fix);
      files.push([weightsFile, bytes]);
      buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    }
    specs.push(...group.weights);
  }
  const described = specs.reduce((s, spec) => s + weightBytes(spec), 0);
  const actual = buffers.reduce((s, b) => s + b.byteLength, 0);
  if (described !== actual) {
    throw fixError(`the weights in ${folder} hold ${actual} bytes but ${file} describes ${described}: ` +
      'truncated or from another model', fix);
  }
  // After the sizes, whose message says more when a file was cut short.
  if (expected) files.forEach(([f, bytes]) => verifyChecksum(f, bytes, expected.sums, expected.recordedIn, expected.fix ?? fix));
  return { specs, weights: tf.io.CompositeArrayBuffer.join(buffers) };
}

/**
 * Loads a layers model from `folder/model.json` and the weight files its manifest names.
 * Problems are one-line ConfigErrors naming the file; `fix` says what to do. With `expected`
 * (a checkpoint's record), model.json and every weight file must have the SHA-256 it gives,
 * checked on the very bytes that are loaded.
 */
export async function loadLayersModelFromFolder(folder: string, fix: Fix, expected?: Expected): Promise<tfl.LayersModel> {
  const file = path.join(folder, MODEL_FILE);
  const text = readRegularFile(file, fix);
  if (expected) verifyChecksum(file, text, expected.sums, expected.recordedIn, expected.fix ?? fix);
  const json = parseJson(text.toString('utf8'), file, fix);
  if (!isObject(json) || !isObject(json.modelTopology) || !Array.isArray(json.weightsManifest)) {
    throw fixError(`${file} is not a TensorFlow.js layers model (no modelTopology or weightsManifest)`, fix);
  }
  const { specs, weights } = readWeights(folder, file, json.weightsManifest as tf.io.WeightsManifestConfig, fix, expected);
  const artifacts = tf.io.getModelArtifactsForJSONSync(json as unknown as tf.io.ModelJSON, specs, weights);
  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel({ load: async () => artifacts });
  } catch (err) {
    throw fixError(`${file} could not be loaded as a TensorFlow.js layers model (${errorSummary(err)})`, fix);
  }
  const bad = nonFiniteWeights(model);
  if (bad.count > 0) {
    model.dispose();
    throw fixError(`${folder} holds a model with ${bad.count.toLocaleString('en-US')} of ` +
      `${bad.total.toLocaleString('en-US')} weights NaN or infinite (first in ${bad.layers[0]}): its training diverged`,
      'use an earlier checkpoint or train again with a smaller learning rate');
  }
  return model;
}
