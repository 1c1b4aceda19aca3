/**
 * Training a model the tests built themselves (a tampered or tiny one) through the training
 * loop, the way a training run does it: the config resolved, an optimizer made for it (or the
 * one given), a health monitor, and the optimizer released afterwards. A plain-SGD resume
 * starts its fresh optimizer's step counter where the run resumes (as a checkpoint restores
 * it); momentum and Adam need the optimizer given, with their state.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { numBatches } from '../lib/core/fashionMnist';
import type { TrainHistory, TrainProgress } from '../lib/core/history';
import { HealthConfig, HealthMonitor } from '../lib/core/health';
import { disposeOptimizer, hasOptimizerState, makeOptimizer, NinOptimizer } from '../lib/core/optimizers';
import { resolveTrainConfig, TrainConfig } from '../lib/core/trainConfig';
import { TrainData, trainLoop, TrainingView } from '../lib/training/loop';

export interface TrainOptions {
  resume?: TrainProgress;
  optimizer?: NinOptimizer;
  health?: Partial<HealthConfig>;
  signal?: AbortSignal;
}

export async function train(
  model: tfl.LayersModel, data: TrainData, partial: Partial<TrainConfig> = {}, view: TrainingView = {}, run: TrainOptions = {},
): Promise<TrainHistory> {
  const config = resolveTrainConfig(partial);
  const optimizer = run.optimizer ?? makeOptimizer(config);
  try {
    const resume = run.resume;
    if (run.optimizer === undefined && resume !== undefined && !hasOptimizerState(config)) {
      const steps = resume.epochs.length * numBatches(data.train.count, config.batchSize) + (resume.partial?.steps ?? 0);
      const iter = tf.scalar(steps, 'int32');
      await optimizer.setWeights([{ name: 'iter', tensor: iter }]);
      iter.dispose();
    }
    const health = new HealthMonitor(model, config.lr, run.health);
    return await trainLoop(model, data, config, view, { optimizer, resume, signal: run.signal, health });
  } finally {
    if (run.optimizer === undefined) disposeOptimizer(optimizer);
  }
}
