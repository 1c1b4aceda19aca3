/**
 * Training health: noticing, within a few steps, a network that has died or diverged.
 *
 * NiN has no batch normalisation, and two failures can hide behind a loss that looks normal:
 *
 * - **Dead.** When every unit of one ReLU layer outputs 0 for every image (in NiN, typically
 *   the 10-channel last block, once its biases have been pushed negative), the network's output
 *   no longer depends on its input: every image gets the same logits (often all 0, loss ln 10),
 *   and no gradient reaches the layers below. It can never recover, but the loss sits at the
 *   same 2.30 as a live network on its early plateau.
 * - **Diverged.** A too-large step makes weights infinite or NaN. Max pooling passes over NaN
 *   and some ReLU kernels turn it into 0, so the loss can stay a finite 2.3026 while every
 *   weight is NaN.
 *
 * The checks cost one reduction over the gradients and one over the logits per step, and one
 * over the weights every tenth step: about 3 ms per step on the wasm backend (2.8 ms per pass
 * over NiN's 1.99 M values), under 2% of a 67 px, batch-64 step. A live network on its
 * plateau still gives each image slightly different logits, so it is never taken for dead.
 *
 * Deadness is judged only on what can show it: a step that moved no weight, or logits that
 * are the same for two or more images. One image always has a logit spread of 0 (there is
 * nothing to differ from), so a step over one image (`--batch-size 1`, the last batch of an
 * epoch, a piece of a split batch) and an epoch end with one test image say nothing either way.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { logitsOf } from './model';
import { positiveInt, Render, UserError, withDefaults } from './validate';

export interface HealthConfig {
  /**
   * Consecutive steps in which every image of the batch got the same logits (or no gradient
   * reached the weights) before the network is declared dead. A live network hardly ever
   * has one such step; a dead one has them forever. @default 20
   */
  deadAfterSteps: number;
}

export const HEALTH_DEFAULTS: Readonly<HealthConfig> = Object.freeze({ deadAfterSteps: 20 });

/** Fills defaults and checks every field; throws a ConfigError naming the first bad one. */
export function resolveHealthConfig(partial: Partial<HealthConfig> = {}): HealthConfig {
  const c = withDefaults('health', partial, HEALTH_DEFAULTS);
  positiveInt('deadAfterSteps', c.deadAfterSteps);
  return c;
}

/** Where in a run a step is, for messages: 1-based epoch and step. */
export interface StepPosition {
  epoch: number;
  /** 1-based step within the epoch. */
  step: number;
  /** Steps per epoch. */
  steps: number;
}

/** What a training step measured about itself, besides its loss. */
export interface StepVitals {
  /** Mean loss over the batch. */
  loss: number;
  /** Largest spread of any logit across the batch: 0 when every image got the same logits. */
  logitSpread: number;
  /** Σ|g| over every gradient of the step: non-finite if any gradient is; 0 if none flowed. */
  gradAbsSum: number;
  /**
   * How many images `logitSpread` was measured over: the batch, or its largest piece when
   * the step went through in pieces (each piece's spread is its own). Under 2, the spread is
   * 0 whatever the network, and the step says nothing about it. Absent: assumed 2 or more.
   */
  spreadImages?: number;
}

/** Names a config field in a front end's words (the library's own: the field's name). */
export type NameOf = (field: string) => string;

/** The learning rate a message suggests after one that was too large: a tenth of it, to 3 significant digits. */
export function suggestedLr(lr: number): number {
  return Number((lr / 10).toPrecision(3));
}

/** Training stopped because the network can no longer learn; the message says where, what, and what to try. */
export class UnhealthyError extends UserError {
  override name = 'UnhealthyError';
  /**
   * `position`: the step that showed it, when a step did. `lastGood`: the checkpoint a run
   * can go back to, in words, when it has one (a training run adds it). `suggestedLr`: a
   * learning rate worth trying next ({@link suggestedLr}), when the message suggests a smaller one.
   */
  constructor(
    message: string | Render, readonly position?: StepPosition, readonly lastGood?: string, readonly suggestedLr?: number,
  ) {
    super(message);
  }
}

/** The loss, a gradient or a weight became NaN or infinite. */
export class DivergedError extends UnhealthyError {
  override name = 'DivergedError';
}

/** The network's output no longer depends on its input (a dead ReLU layer); it cannot recover. */
export class DeadNetworkError extends UnhealthyError {
  override name = 'DeadNetworkError';
}

/** The largest spread of any column of `logits` [N, classes] across its rows, as a scalar. */
export function logitSpread(logits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.max(tf.sub(tf.max(logits, 0), tf.min(logits, 0))) as tf.Scalar);
}

/** Σ|x| over all of `tensors`: NaN or ∞ when any element is, 0 when all are 0. */
export function absSum(tensors: tf.Tensor[]): number {
  if (tensors.length === 0) return 0;
  const total = tf.tidy(() => tf.addN(tensors.map((t) => tf.sum(tf.abs(t)))));
  const value = total.dataSync()[0];
  total.dispose();
  return value;
}

/** Steps between two checks of the weights (the first step is checked). */
const WEIGHT_CHECK_EVERY = 10;

/**
 * The learning-rate hint every divergence message ends with, as part of a message's render:
 * "try a smaller learning rate than 0.1 (e.g. lr 0.01)", the field named by `nameOf`.
 */
export function smallerLrHint(lr: number, nameOf: NameOf = (f) => f): string {
  return `try a smaller learning rate than ${short(lr)} (e.g. ${nameOf('lr')} ${short(suggestedLr(lr))})`;
}

const short = (x: number) => (x > 1e6 ? x.toExponential() : String(Number(x.toPrecision(3))));

const where = (p: StepPosition) => `at epoch ${p.epoch}, step ${p.step} of ${p.steps}`;

/** Per layer, how many of its weights are NaN or infinite: what a divergence message names. */
export function nonFiniteWeights(model: tfl.LayersModel): { count: number; total: number; layers: string[] } {
  let count = 0;
  let total = 0;
  const layers: string[] = [];
  for (const w of model.weights) {
    const values = w.read().dataSync() as Float32Array;
    let bad = 0;
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) bad++;
    total += values.length;
    count += bad;
    if (bad > 0) layers.push(w.originalName);
  }
  return { count, total, layers };
}

/**
 * Watches one run's steps. `check` is called after every step with the step's vitals and
 * throws a {@link DivergedError} or {@link DeadNetworkError} when the network is beyond help.
 */
export class HealthMonitor {
  private readonly config: HealthConfig;
  /**
   * Consecutive steps whose logits ignored the input, or that moved no weight (a step over
   * one image that moved weights neither counts nor breaks the run of them).
   */
  private flatSteps = 0;
  /** Whether the last step that could tell showed a live network. */
  private shownAlive = false;
  /** Steps checked so far. */
  private steps = 0;

  constructor(private readonly model: tfl.LayersModel, private readonly lr: number, config: Partial<HealthConfig> = {}) {
    this.config = resolveHealthConfig(config);
  }

  /** Throws when this step shows a diverged or dead network; otherwise counts it. */
  check(vitals: StepVitals, position: StepPosition): void {
    const lr = this.lr;
    if (!Number.isFinite(vitals.loss)) {
      throw new DivergedError((_, nameOf) => `training diverged ${where(position)}: the loss is ${vitals.loss}; ` +
        smallerLrHint(lr, nameOf), position, undefined, suggestedLr(lr));
    }
    if (!Number.isFinite(vitals.gradAbsSum)) {
      throw new DivergedError((_, nameOf) => `training diverged ${where(position)}: the gradients hold NaN or infinite values ` +
        `(the update was not applied); ${smallerLrHint(lr, nameOf)}`, position, undefined, suggestedLr(lr));
    }
    if (this.steps++ % WEIGHT_CHECK_EVERY === 0) this.checkWeights(vitals, position);
    const spreadTells = (vitals.spreadImages ?? 2) >= 2;
    if (vitals.gradAbsSum === 0 || (spreadTells && vitals.logitSpread === 0)) {
      this.flatSteps++;
      this.shownAlive = false;
    } else if (spreadTells) {
      this.flatSteps = 0;
      this.shownAlive = true;
    } // else: one image, weights moved: nothing learnt either way
    if (this.flatSteps >= this.config.deadAfterSteps) this.dead(vitals, position);
  }

  /**
   * Before an epoch's results are reported (and saved): checks the weights, and runs one
   * inference pass (no dropout) over `xs`. When `xs` holds two or more images and every one
   * gets the same logits, the network is dead unless the last step that could tell showed it
   * alive: a run whose last steps were flat (fewer than `deadAfterSteps`), or whose steps
   * could not tell (one image each), stops here. One image tells nothing. Returns the classes
   * whose score is 0 for every image of `xs` (two or more): their channels of the last block
   * have died, a partly dead network (it goes on, but can hardly predict them).
   */
  checkEpochEnd(xs: tf.Tensor4D, vitals: StepVitals, position: StepPosition): number[] {
    this.checkWeights(vitals, position);
    if (xs.shape[0] < 2) return [];
    const [spread, max] = tf.tidy(() => {
      const logits = logitsOf(this.model, xs);
      return [logitSpread(logits), tf.max(logits, 0)];
    });
    const flat = spread.dataSync()[0] === 0;
    const silent = Array.from(max.dataSync()).flatMap((m, k) => (m === 0 ? [k] : []));
    tf.dispose([spread, max]);
    if (flat && !this.shownAlive) this.dead(vitals, position, xs.shape[0]);
    return silent;
  }

  /**
   * Throws when a weight is NaN or infinite. (Gradients are checked every step and a NaN one
   * is never applied, so a weight can only overflow; this runs every few steps.)
   */
  private checkWeights(vitals: StepVitals, position: StepPosition): void {
    if (Number.isFinite(absSum(this.model.trainableWeights.map((w) => w.read())))) return;
    const bad = nonFiniteWeights(this.model);
    const lr = this.lr;
    throw new DivergedError((_, nameOf) => `training diverged ${where(position)}: ${bad.count.toLocaleString('en-US')} of ` +
      `${bad.total.toLocaleString('en-US')} weights are NaN or infinite (first in ${bad.layers[0]}), whatever the ` +
      `loss (${vitals.loss.toFixed(4)}) says; ${smallerLrHint(lr, nameOf)}`, position, undefined, suggestedLr(lr));
  }

  /** `testImages`: when the epoch-end check on that many test images showed it, not the steps. */
  private dead(vitals: StepVitals, position: StepPosition, testImages?: number): never {
    const what = vitals.gradAbsSum === 0 ? 'no gradient reaches any weight' : 'no gradient reaches the layers below the dead one';
    const flat = this.flatSteps;
    const shown = flat > 0
      ? `for ${flat} step${flat === 1 ? '' : 's'} it has given every image the same scores (${describeLogits(vitals)}) and ${what}`
      : `it gives all ${testImages} images of the first test batch the same scores (its steps, of one image each, could not ` +
        'tell)';
    const lr = this.lr;
    throw new DeadNetworkError((_, nameOf) => `the network died ${where(position)}: ${shown}: a ReLU layer outputs 0 for ` +
      `every input, so it cannot recover. Start again with a learning-rate warm-up (${nameOf('warmupSteps')}), ` +
      `${smallerLrHint(lr, nameOf).replace(/^try /, '')}, a starting bias of 0.1 in the last block ` +
      `(${nameOf('classBlockBias')} 0.1), He initialisation (${nameOf('init')} he), or another ${nameOf('seed')}`,
    position, undefined, suggestedLr(lr));
  }
}

function describeLogits(v: StepVitals): string {
  return Math.abs(v.loss - Math.log(10)) < 1e-6 ? `every class alike, loss ln 10 = ${v.loss.toFixed(4)}` : `loss ${v.loss.toFixed(4)}`;
}
