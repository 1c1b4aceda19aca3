/**
 * An optimizer's state on disk: its step counter and, for momentum and Adam, its per-weight
 * slot variables (reached through tfjs's `getWeights`/`setWeights`, and for Adam its running
 * powers of β, which tfjs keeps as private variables).
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Fix, fixError, readRegularFile, verifyChecksum } from './files';
import type { Expected } from './layersFolder';
import { disposeOptimizer, makeOptimizer, NinOptimizer } from '../core/optimizers';
import type { TrainConfig } from '../core/trainConfig';

/** The optimizer's slot variables (see {@link OptimizerState}). */
export const OPTIMIZER_FILE = 'optimizer.bin';

/**
 * The optimizer as state.json records it. Plain SGD has no per-weight (slot) variables: its
 * update depends only on the learning rate. Momentum keeps one velocity tensor per trainable
 * weight, in the model's `trainableWeights` order; Adam keeps two (first the averages of the
 * gradients for every weight, then those of their squares). Their values are in optimizer.bin.
 * `iterations` is the optimizer's step counter; `lr` is the rate the next step will use.
 */
export interface OptimizerState {
  name: 'sgd' | 'momentum' | 'adam';
  lr: number;
  momentum: number;
  iterations: number;
  slots: { name: string; shape: number[] }[];
  /**
   * Adam only: β1^(t+1) and β2^(t+1) exactly as the optimizer held them (products of float32
   * multiplications; recomputing them with `pow`, as tfjs's `setWeights` does, rounds
   * differently and a resumed run would drift from the uninterrupted one in the last bits).
   */
  betaPowers?: [number, number];
}

/** Adam's running powers of β1 and β2 (tfjs keeps them as scalar variables). */
interface AdamInternals { accBeta1: tf.Variable; accBeta2: tf.Variable }

/**
 * The slot variables of `optimizer` (momentum's velocity, Adam's averages; none for plain SGD)
 * as names, shapes and one float32 buffer in order, and Adam's powers of β.
 */
export async function optimizerSlots(optimizer: tf.Optimizer): Promise<{
  slots: OptimizerState['slots']; bytes: Uint8Array; betaPowers?: [number, number];
}> {
  const [iter, ...slots] = await optimizer.getWeights();
  iter.tensor.dispose(); // a fresh scalar; the slots are the optimizer's own variables
  const values = await Promise.all(slots.map((s) => s.tensor.data<'float32'>()));
  const all = new Float32Array(values.reduce((n, v) => n + v.length, 0));
  let at = 0;
  for (const v of values) {
    all.set(v, at);
    at += v.length;
  }
  const adam = optimizer.getClassName() === 'Adam' ? optimizer as unknown as AdamInternals : undefined;
  return {
    slots: slots.map((s) => ({ name: s.name, shape: [...s.tensor.shape] })),
    bytes: new Uint8Array(all.buffer),
    betaPowers: adam && [(await adam.accBeta1.data())[0], (await adam.accBeta2.data())[0]],
  };
}

/**
 * The optimizer of `train` (see {@link makeOptimizer}) with the state a checkpoint saved:
 * its step counter and, for momentum and Adam, their slots, checked against `model`'s
 * trainable weights (one slot per weight for momentum, two for Adam; same shapes, same order).
 * (A checkpoint saved before the first step has no slots yet: tfjs creates them then.)
 * With `expected` (the checkpoint's record), optimizer.bin must have the SHA-256 it gives.
 */
export async function restoreOptimizer(
  folder: string, saved: OptimizerState, train: TrainConfig, model: tfl.LayersModel, fix: Fix, expected?: Expected,
): Promise<NinOptimizer> {
  const { slots, iterations, betaPowers } = saved;
  const weights = model.trainableWeights.map((w) => w.shape.join('x'));
  const shapes = saved.name === 'adam' ? [...weights, ...weights] : weights;
  const file = path.join(folder, OPTIMIZER_FILE);
  if (slots.length > 0 && (slots.length !== shapes.length || slots.some((s, i) => s.shape.join('x') !== shapes[i]))) {
    throw fixError(`${path.join(folder, 'state.json')} lists ${slots.length} optimizer slots that do not match the ` +
      `model's ${weights.length} trainable weights`, fix);
  }
  let values = new Float32Array(0);
  if (slots.length > 0) {
    const bytes = readRegularFile(file, fix);
    const described = slots.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0) * 4;
    if (bytes.byteLength !== described) {
      throw fixError(`${file} holds ${bytes.byteLength} bytes but state.json describes ${described}: truncated`, fix);
    }
    if (expected) verifyChecksum(file, bytes, expected.sums, expected.recordedIn, expected.fix ?? fix);
    values = new Float32Array(new Uint8Array(bytes).buffer); // a copy, aligned
  }
  const optimizer = makeOptimizer(train);
  const named: { name: string; tensor: tf.Tensor }[] = [{ name: 'iter', tensor: tf.scalar(iterations, 'int32') }];
  let at = 0;
  for (const s of slots) {
    const size = s.shape.reduce((a, b) => a * b, 1);
    named.push({ name: s.name, tensor: tf.tensor(values.subarray(at, at + size), s.shape, 'float32') });
    at += size;
  }
  try {
    await optimizer.setWeights(named); // the slots become variables sharing these tensors' data
    if (betaPowers !== undefined) {
      const adam = optimizer as unknown as AdamInternals;
      tf.tidy(() => {
        adam.accBeta1.assign(tf.scalar(betaPowers[0]));
        adam.accBeta2.assign(tf.scalar(betaPowers[1]));
      });
    }
  } catch (err) {
    disposeOptimizer(optimizer);
    throw err;
  } finally {
    tf.dispose(named.map((n) => n.tensor));
  }
  return optimizer;
}

