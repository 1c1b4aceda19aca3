/**
 * The page's training Web Worker: the library's own loop (lib/training/loop.ts: `trainLoop`,
 * with `makeOptimizer` and `HealthMonitor` from lib/core) on the shipped images, WebGL where an
 * OffscreenCanvas gives one, else wasm. It posts every step, every epoch, and the weights a few
 * times a second for the page's maps and filters. Stop aborts the loop between steps; resume
 * continues from where it stopped with the same optimizer (as a checkpoint resume does).
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { parseIdx } from '../../lib/core/idx';
import { decodeSplit, numBatches, sliceSplit } from '../../lib/core/fashionMnist';
import { nin, resolveNinConfig } from '../../lib/core/model';
import { resolveTrainConfig, TrainConfig } from '../../lib/core/trainConfig';
import { makeOptimizer, NinOptimizer } from '../../lib/core/optimizers';
import { HealthMonitor } from '../../lib/core/health';
import { describePosition, TrainHistory } from '../../lib/core/history';
import { errorSummary } from '../../lib/core/validate';
import { trainLoop, TrainData } from '../../lib/training/loop';
import { FromWorker, RECIPES, ToWorker } from './protocol';
import { chooseBackend } from './backend';

const post = (m: FromWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);

let data: TrainData | undefined;
let run: {
  model: tfl.Sequential; optimizer: NinOptimizer; config: TrainConfig; history: TrainHistory; controller?: AbortController;
} | undefined;

async function loadData(): Promise<TrainData> {
  const get = async (f: string) => new Uint8Array(await (await fetch(new URL(`assets/data/${f}`, self.location.href))).arrayBuffer());
  const split = async (name: string) => decodeSplit(parseIdx(await get(`${name}-images.idx`), `${name}-images.idx`),
    parseIdx(await get(`${name}-labels.idx`), `${name}-labels.idx`), `${name}-images.idx`, `${name}-labels.idx`).split;
  // Evaluated after each epoch on 500 of the shipped test images (the page's confusion matrix uses all 1,000).
  return { train: await split('train'), test: sliceSplit(await split('test'), 0, 500) };
}

function postWeights(model: tfl.LayersModel, step: number): void {
  const weights = model.getWeights().map((w) => ({ shape: w.shape, data: w.dataSync() as Float32Array }));
  post({ type: 'weights', weights, step }, weights.map((w) => w.data.buffer));
}

async function train(): Promise<void> {
  const r = run!;
  r.controller = new AbortController();
  const steps = numBatches(data!.train.count, r.config.batchSize);
  let lastWeights = 0;
  let step = r.history.epochs.length * steps + (r.history.interrupted?.steps ?? 0);
  try {
    const history = await trainLoop(r.model, data!, r.config, {
      onBatchEnd: (info) => {
        step++;
        post({ type: 'batch', info });
        if (performance.now() - lastWeights > 400) {
          postWeights(r.model, step);
          lastWeights = performance.now();
        }
      },
      onEpochEnd: (result) => post({ type: 'epoch', result }),
    }, {
      optimizer: r.optimizer, health: new HealthMonitor(r.model, r.config.lr), signal: r.controller.signal,
      resume: r.history.epochs.length > 0 || r.history.interrupted ? { epochs: r.history.epochs, partial: r.history.interrupted } : undefined,
    });
    r.history = history;
    postWeights(r.model, step);
    post({ type: 'stopped', where: describePosition(history.epochs.length, history.interrupted), finished: !history.interrupted });
  } catch (err) {
    post({ type: 'error', message: errorSummary(err) });
  }
}

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  try {
    await ready;
    if (m.type === 'stop') {
      run?.controller?.abort();
      return;
    }
    data ??= await loadData();
    if (m.type === 'start') {
      run?.controller?.abort();
      if (run) { run.model.dispose(); run.optimizer.dispose(); }
      const recipe = RECIPES.find((r) => r.id === m.recipe) ?? RECIPES[0];
      const config = resolveTrainConfig({ ...recipe.train, seed: m.seed });
      const modelConfig = resolveNinConfig({ ...recipe.model, inputSize: config.resize, seed: config.seed });
      const model = nin(modelConfig);
      run = { model, optimizer: makeOptimizer(config), config, history: { config, epochs: [] } };
      post({ type: 'started', config, model: modelConfig, stepsPerEpoch: numBatches(data.train.count, config.batchSize) });
      postWeights(model, 0);
      await train();
    } else if (m.type === 'resume' && run) {
      await train();
    }
  } catch (err) {
    post({ type: 'error', message: errorSummary(err) });
  }
};

const ready = chooseBackend(self.location.href, new URL(self.location.href).searchParams.get('backend'))
  .then((backend) => post({ type: 'ready', backend }));
