/**
 * Training NiN's convolutions with their bias and ReLU fused, as inference already runs them.
 *
 * tfjs fuses a convolution's bias and activation into one kernel (FusedConv2D) only outside a
 * gradient tape. While it trains, every convolution of NiN costs five memory passes besides
 * the convolution itself: bias Add and Relu forward, Step, Multiply and the bias Sum backward.
 * With the native kernels (lib/kernels/native.ts), `trainingForward` runs each ReLU
 * convolution as FusedConv2D forward (oneDNN adds the bias as it writes the output; one
 * native pass applies the ReLU) and one NinReluBackprop pass backward (the ReLU gradient and
 * the bias gradient together), then the convolution's two gradients; a max-pool that follows a
 * ReLU convolution joins it, its gradient and the ReLU's one pass (NinMaxPoolReluBackprop).
 * The first convolution skips the gradient of its input: it is the images.
 *
 * The results are those of `model.apply(x, { training: true })` up to rounding (the bias is
 * added inside the convolution). Without the native kernels, `trainingForward` is
 * `model.apply`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { POOL_RELU_BACKPROP, RELU_BACKPROP } from './kernelNames';

/** The convolution settings a fused layer runs with. */
interface ConvSpec {
  strides: [number, number];
  pad: 'valid' | 'same';
}

/** A max-pool that follows a fused convolution (MaxPool's attrs). */
interface PoolSpec {
  filterSize: [number, number];
  strides: [number, number];
  pad: 'valid' | 'same';
}

/** A layer's fields this module reads (tfjs-layers' MaxPooling2D config). */
interface MaxPooling2DConfig {
  poolSize: [number, number];
  strides: [number, number];
  padding: 'valid' | 'same';
  dataFormat: string;
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

/** Whether the backend in use has the kernel `name` (this module's own exist only with the native addon). */
const registered = (name: string): boolean => tf.getKernel(name, tf.getBackend()) !== undefined;

/** Whether the backend in use has the fused backward kernel (wasm with the native addon). */
export function fusedTrainingAvailable(): boolean {
  return registered(RELU_BACKPROP);
}

/** The layer's convolution settings when it is a 2-D NHWC ReLU convolution with a bias; else undefined. */
function fusableConv(layer: tfl.layers.Layer): ConvSpec | undefined {
  if (layer.getClassName() !== 'Conv2D' || layer.weights.length !== 2) return undefined;
  const c = layer.getConfig() as unknown as Conv2DConfig;
  const dilation = Array.isArray(c.dilationRate) ? c.dilationRate : [c.dilationRate, c.dilationRate];
  const ok = c.activation === 'relu' && c.useBias && c.dataFormat === 'channelsLast' && dilation.every((d) => d === 1);
  return ok ? { strides: c.strides, pad: c.padding } : undefined;
}

/** The layer's pooling settings when it is an NHWC max-pool and the fused pool gradient exists; else undefined. */
function fusablePool(layer: tfl.layers.Layer | undefined): PoolSpec | undefined {
  if (layer === undefined || layer.getClassName() !== 'MaxPooling2D') return undefined;
  if (!registered(POOL_RELU_BACKPROP)) return undefined;
  const c = layer.getConfig() as unknown as MaxPooling2DConfig;
  return c.dataFormat === 'channelsLast' ? { filterSize: c.poolSize, strides: c.strides, pad: c.padding } : undefined;
}

/**
 * relu(conv(x, kernel) + bias) as one kernel, with a gradient for `kernel` and `bias`, and for
 * `x` when `inputGrad` (NHWC). With `pool`, the max-pool that follows as well: its gradient and
 * the ReLU's are one pass. Needs the native kernels (see fusedTrainingAvailable).
 */
function convBiasRelu(
  x: tf.Tensor4D, kernel: tf.Tensor4D, bias: tf.Tensor1D, spec: ConvSpec, inputGrad: boolean, pool?: PoolSpec,
): tf.Tensor4D {
  const engine = tf.engine();
  const conv = { strides: spec.strides, pad: spec.pad, dataFormat: 'NHWC' };
  const fused = { ...conv, dilations: [1, 1], activation: 'relu', leakyreluAlpha: 0 };
  // What the backward pass reads must go through `save`: the forward pass's tensors are
  // disposed before backpropagation starts (tfjs keeps clones of saved ones).
  const backward = (dy: tf.Tensor4D, [xs, w, y]: tf.Tensor[]): tf.Tensor[] => tf.tidy(() => {
    const [dz, db] = (pool === undefined
      ? engine.runKernel(RELU_BACKPROP, { dy, y }, {})
      : engine.runKernel(POOL_RELU_BACKPROP, { dy, y }, { ...pool })) as tf.Tensor[];
    const dw = engine.runKernel('Conv2DBackpropFilter', { x: xs, dy: dz }, { ...conv, filterShape: w.shape }) as tf.Tensor;
    if (!inputGrad) return [dw, db];
    const dx = engine.runKernel('Conv2DBackpropInput', { dy: dz, filter: w }, { ...conv, inputShape: xs.shape }) as tf.Tensor;
    return [dx, dw, db];
  });
  const forward = (w: tf.Tensor4D, b: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const y = engine.runKernel('FusedConv2D', { x, filter: w, bias: b }, fused) as tf.Tensor4D;
    save([x, w, y]);
    const value = pool === undefined ? y : engine.runKernel('MaxPool', { x: y }, { ...pool }) as tf.Tensor4D;
    return { value, gradFunc: backward };
  };
  if (!inputGrad) return tf.customGrad(forward as never)(kernel, bias) as tf.Tensor4D;
  // x is an argument here so that its gradient flows on; `forward` reads the same tensor.
  const withInput = (_x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, save: tf.GradSaveFunc) => forward(w, b, save);
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
  const layers = model.layers;
  for (let i = 0; i < layers.length; i++) {
    const spec = fusableConv(layers[i]);
    if (spec === undefined) {
      out = layers[i].apply(out, { training: true }) as tf.Tensor;
      continue;
    }
    const pool = fusablePool(layers[i + 1]);
    const [kernel, bias] = layers[i].weights.map((v) => v.read());
    out = convBiasRelu(out as tf.Tensor4D, kernel as tf.Tensor4D, bias as tf.Tensor1D, spec, out !== x, pool);
    if (pool !== undefined) i++;
  }
  return out;
}
