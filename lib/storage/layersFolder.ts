/**
 * A layers model in a folder: `model.json` (topology + weights manifest) and `weights.bin`,
 * the standard TensorFlow.js layers format that `tf.loadLayersModel` reads from files, HTTP
 * or memory. Loading checks what it reads: the weight files stay inside the folder, their
 * sizes match the manifest, and no weight is NaN or infinite.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { FileError, fsReason, isObject, readJson, userFsCode, writeSynced } from './files';
import { nonFiniteWeights } from '../core/health';
import { ConfigError, errorSummary } from '../core/validate';

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

/**
 * Writes `model` as `folder/model.json` + `folder/weights.bin`, fsyncing both. Returns the
 * bytes written.
 */
export async function saveLayersModel(model: tfl.LayersModel, folder: string): Promise<number> {
  fs.mkdirSync(folder, { recursive: true });
  let bytes = 0;
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weights = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
    const json = `${JSON.stringify(modelJson(artifacts))}\n`;
    writeSynced(path.join(folder, WEIGHTS_FILE), new Uint8Array(weights));
    writeSynced(path.join(folder, MODEL_FILE), json);
    bytes = weights.byteLength + Buffer.byteLength(json);
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  }));
  return bytes;
}

/** Bytes a weight takes in weights.bin (quantized weights take their storage type's size). */
function weightBytes(spec: tf.io.WeightsManifestEntry): number {
  const size: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, int16: 2, complex64: 8 };
  const count = spec.shape.reduce((a, b) => a * b, 1);
  return count * (size[spec.quantization?.dtype ?? spec.dtype] ?? 4);
}

/** The weight file `name` of model.json, refused when it would lead outside `folder`. */
function weightsPath(folder: string, name: unknown, file: string, fix: string): string {
  const resolved = path.resolve(folder, String(name));
  const inside = path.relative(folder, resolved);
  if (typeof name !== 'string' || inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) {
    throw new ConfigError(`${file} names the weight file ${JSON.stringify(name)}, which is not inside ${folder}; ` +
      `weight files must sit beside model.json; ${fix}`);
  }
  return resolved;
}

/** The manifest's weight specs and the bytes of its files, checked against each other. */
function readWeights(folder: string, file: string, manifest: tf.io.WeightsManifestConfig, fix: string) {
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const group of manifest) {
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new ConfigError(`${file} has a malformed weightsManifest entry (it needs "paths" and "weights"); ${fix}`);
    }
    for (const p of group.paths) {
      const weightsFile = weightsPath(folder, p, file, fix);
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(weightsFile);
      } catch (err) {
        throw new FileError(`${weightsFile} (named in ${file}) cannot be read ${fsReason(err)}; ${fix}`, userFsCode(err));
      }
      buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    }
    specs.push(...group.weights);
  }
  const expected = specs.reduce((s, spec) => s + weightBytes(spec), 0);
  const actual = buffers.reduce((s, b) => s + b.byteLength, 0);
  if (expected !== actual) {
    throw new ConfigError(`the weights in ${folder} hold ${actual} bytes but ${file} describes ${expected}: ` +
      `truncated or from another model; ${fix}`);
  }
  return { specs, weights: tf.io.CompositeArrayBuffer.join(buffers) };
}

/**
 * Loads a layers model from `folder/model.json` and the weight files its manifest names.
 * Problems are one-line ConfigErrors naming the file; `fix` says what to do.
 */
export async function loadLayersModelFromFolder(folder: string, fix: string): Promise<tfl.LayersModel> {
  const file = path.join(folder, MODEL_FILE);
  const json = readJson(file, fix);
  if (!isObject(json) || !isObject(json.modelTopology) || !Array.isArray(json.weightsManifest)) {
    throw new ConfigError(`${file} is not a TensorFlow.js layers model (no modelTopology or weightsManifest); ${fix}`);
  }
  const { specs, weights } = readWeights(folder, file, json.weightsManifest as tf.io.WeightsManifestConfig, fix);
  const artifacts = tf.io.getModelArtifactsForJSONSync(json as unknown as tf.io.ModelJSON, specs, weights);
  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel({ load: async () => artifacts });
  } catch (err) {
    throw new ConfigError(`${file} could not be loaded as a TensorFlow.js layers model ` +
      `(${errorSummary(err)}); ${fix}`);
  }
  const bad = nonFiniteWeights(model);
  if (bad.count > 0) {
    model.dispose();
    throw new ConfigError(`${folder} holds a model with ${bad.count.toLocaleString('en-US')} of ` +
      `${bad.total.toLocaleString('en-US')} weights NaN or infinite (first in ${bad.layers[0]}): its training diverged; ` +
      'use an earlier checkpoint or train again with a smaller learning rate');
  }
  return model;
}
