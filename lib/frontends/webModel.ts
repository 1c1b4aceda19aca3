/**
 * The web page's model check, shared by the page (a folder dropped onto it) and `nin web
 * --model DIR` (a checkpoint served to it): is this a NiN of the shapes the library builds?
 * Browser-safe: it uses lib/core only.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { MIN_INPUT_SIZE, nin, NinConfig } from '../core/model';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_SIDE } from '../core/fashionMnist';

/** What a checked model is: the settings that rebuild it with lib/core's `nin`. */
export interface NinShape {
  inputSize: number;
  oneByOneCount: number;
  oneByOneKernel: 1 | 3;
}

/** Why `model` is not a NiN the page can show (one line), or its shape. */
export function checkNinModel(model: tfl.LayersModel): { ok: true; shape: NinShape } | { ok: false; problem: string } {
  const input = model.inputs[0]?.shape ?? [];
  if (model.inputs.length !== 1 || input.length !== 4 || input[1] !== input[2] || input[3] !== 1) {
    return { ok: false, problem: `it takes ${JSON.stringify(input)} where a NiN takes one grey square image, [null, size, size, 1]` };
  }
  const inputSize = input[1] as number;
  if (!Number.isInteger(inputSize) || inputSize < MIN_INPUT_SIZE) {
    return { ok: false, problem: `its input is ${inputSize} px; a NiN needs at least ${MIN_INPUT_SIZE} px (Fashion-MNIST's ${FASHION_MNIST_SIDE}×${FASHION_MNIST_SIDE} images are resized up to it)` };
  }
  const names = model.layers.map((l) => l.name);
  const oneByOneCount = names.filter((n) => /^block1_conv\d+$/.test(n)).length - 1;
  if (oneByOneCount < 0 || oneByOneCount > 3 || !names.includes('global_avg_pool')) {
    return { ok: false, problem: 'its layers are not a NiN\'s (block1_conv0 …, global_avg_pool): use a model saved by nin train or the notebooks' };
  }
  const kernel = model.layers.find((l) => l.name === 'block1_conv1')?.getWeights()[0]?.shape[0];
  const oneByOneKernel = kernel === 3 ? 3 : 1;
  let reference: tfl.Sequential | undefined;
  try {
    const config: Partial<NinConfig> = { inputSize, oneByOneCount, oneByOneKernel, numClasses: FASHION_MNIST_CLASSES.length };
    reference = nin(config);
    const want = reference.layers.map((l) => `${l.name} ${l.weights.map((w) => `[${w.shape.join(',')}]`).join(' ')}`);
    const got = model.layers.map((l) => `${l.name} ${l.weights.map((w) => `[${w.shape.join(',')}]`).join(' ')}`);
    for (let i = 0; i < Math.max(want.length, got.length); i++) {
      if (want[i] !== got[i]) {
        return { ok: false, problem: `layer ${i + 1} is ${got[i] ?? 'missing'} where a ${inputSize}-px NiN with ${FASHION_MNIST_CLASSES.length} classes has ${want[i] ?? 'none'}` };
      }
    }
  } finally {
    reference?.dispose();
  }
  return { ok: true, shape: { inputSize, oneByOneCount, oneByOneKernel } };
}
