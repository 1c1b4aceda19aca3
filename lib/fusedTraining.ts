/**
 * Training NiN's convolutions with their bias and ReLU fused, as inference already runs them.
 *
 * tfjs fuses a convolution's bias and activation into one kernel (FusedConv2D) only outside a
 * gradient tape. While it trains, every convolution of NiN costs five memory passes besides
 * the convolution itself: bias Add and Relu forward, Step, Multiply and the bias Sum backward.
 * With the native kernels (lib/kernels/native.ts), `trainingForward` runs each ReLU
 * convolution as FusedConv2D forward (oneDNN adds the bias as it writes the output; one
 * native pass applies the ReLU) and one NinReluBackprop pass backward (the ReLU gradient and
 * the bias gradient together), then the convolution's two gradients. The first convolution skips the gradient
 * of its input: it is the images.
 *
 * The results are those of `model.apply(x, { training: true })` up to rounding (the bias is
 * added inside the convolution). Without the native kernels, `trainingForward` is
 * `model.apply`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { RELU_BACKPROP } from './kernels/native';

/** The convolution settings a fused layer runs with. */
interface ConvSpec {
  strides: [number, number];
  pad: 'valid' | 'same';
}

/** A layer's fields this module reads (tfjs-layers' Conv2D config). */
interface Conv2DConfig {
  activation: string;
  useBias: boolean;
  dataFormat: string;
  dilationRate: number | number[];
  strides: [number, number];
  padding: 'valid' | 'same';
}

/** Whether the backend in use has the fused backward kernel (wasm with the native addon). */
export function fusedTrainingAvailable(): boolean {
  return tf.getKernel(RELU_BACKPROP, tf.getBackend()) !== undefined;
}

/** The layer's convolution settings when it is a 2-D NHWC ReLU convolution with a bias; else undefined. */
function fusableConv(layer: tfl.layers.Layer): ConvSpec | undefined {
  if (layer.getClassName() !== 'Conv2D' || layer.weights.length !== 2) return undefined;
  const c = layer.getConfig() as unknown as Conv2DConfig;
  const dilation = Array.isArray(c.dilationRate) ? c.dilationRate : [c.dilationRate, c.dilationRate];
  const ok = c.activation === 'relu' && c.useBias && c.dataFormat === 'channelsLast' && dilation.every((d) => d === 1);
  return ok ? { strides: c.strides, pad: c.padding } : undefined;
}

/**
 * relu(conv(x, kernel) + bias) as one kernel, with a gradient for `kernel` and `bias`, and for
 * `x` when `inputGrad` (NHWC). Needs the native kernels (see fusedTrainingAvailable).
 */
export function convBiasRelu(x: tf.Tensor4D, kernel: tf.Tensor4D, bias: tf.Tensor1D, spec: ConvSpec, inputGrad: boolean): tf.Tensor4D {
  const engine = tf.engine();
  const conv = { strides: spec.strides, pad: spec.pad, dataFormat: 'NHWC' };
  const fused = { ...conv, dilations: [1, 1], activation: 'relu', leakyreluAlpha: 0 };
  // What the backward pass reads must go through `save`: the forward pass's tensors are
  // disposed before backpropagation starts (tfjs keeps clones of saved ones).
  const backward = (dy: tf.Tensor4D, [xs, w, y]: tf.Tensor[]): tf.Tensor[] => tf.tidy(() => {
    const [dz, db] = engine.runKernel(RELU_BACKPROP, { dy, y }, {}) as tf.Tensor[];
    const dw = engine.runKernel('Conv2DBackpropFilter', { x: xs, dy: dz }, { ...conv, filterShape: w.shape }) as tf.Tensor;
    if (!inputGrad) return [dw, db];
    const dx = engine.runKernel('Conv2DBackpropInput', { dy: dz, filter: w }, { ...conv, inputShape: xs.shape }) as tf.Tensor;
    return [dx, dw, db];
  });
  const forward = (w: tf.Tensor4D, b: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const y = engine.runKernel('FusedConv2D', { x, filter: w, bias: b }, fused) as tf.Tensor4D;
    save([x, w, y]);
    return { value: y, gradFunc: backward };
  };
  if (!inputGrad) return tf.customGrad(forward as never)(kernel, bias) as tf.Tensor4D;
  // x is an argument here so that its gradient flows on; `forward` reads the same tensor.
  const withInput = (xi: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, save: tf.GradSaveFunc) => forward(w, b, save);
  return tf.customGrad(withInput as never)(x, kernel, bias) as tf.Tensor4D;
}

/**
 * `model.apply(x, { training: true })` for a sequential model, its ReLU convolutions fused
 * (see the module's comment) when the native kernels are in use. `x` is the model's input:
 * no gradient is computed for it.
 */
export function trainingForward(model: tfl.LayersModel, x: tf.Tensor4D): tf.Tensor {
  if (!fusedTrainingAvailable() || model.getClassName() !== 'Sequential') return model.apply(x, { training: true }) as tf.Tensor;
  let out: tf.Tensor = x;
  for (const layer of model.layers) {
    const spec = fusableConv(layer);
    out = spec === undefined
      ? layer.apply(out, { training: true }) as tf.Tensor
      : convBiasRelu(out as tf.Tensor4D, layer.weights[0].read() as tf.Tensor4D, layer.weights[1].read() as tf.Tensor1D, spec, out !== x);
  }
  return out;
}
