/**
 * Starting NiN's class block alive. The last block has one narrow channel per class, fed by
 * non-negative inputs through a few random weights, so at initialisation some channels are
 * below zero for every image: their classes score 0 whatever the image and get no gradient,
 * and only luck in the layers below revives them (with zero biases two to five of ten classes
 * start like this; with a 0.1 bias still zero to three; measured over seeds 0–9).
 *
 * `liftClassBlock` looks at a batch of training images before the first step and raises the
 * bias of each class-block channel whose pre-activation falls below `margin` anywhere in the
 * batch, just enough to reach it, layer by layer. Weights are not touched, and a channel that
 * is already clear of the margin keeps its bias: it is data-dependent initialisation in the
 * spirit of Mishkin & Matas (2016), limited to the biases of the block that can silence a class.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { FashionMnistSplit, firstBatch } from './fashionMnist';

/** The layers of the class block: NiN's last block, whose convolutions are named `block4_convK`. */
const isClassBlockConv = (layer: tfl.layers.Layer) => /^block4_conv\d+$/.test(layer.name) && layer.getClassName() === 'Conv2D';

/**
 * Raises class-block biases so that every channel's pre-activation is at least `margin` on the
 * first `images` images of `train` (resized to `resize`). Returns how many channels it lifted.
 */
export function liftClassBlock(model: tfl.LayersModel, train: FashionMnistSplit, options: { resize: number; margin: number; images?: number }): number {
  const { resize, margin, images = 256 } = options;
  const last = model.layers.map(isClassBlockConv).lastIndexOf(true);
  if (!(margin > 0) || train.count === 0 || last < 0) return 0;
  const first = firstBatch(train, images, resize)!;
  let lifted = 0;
  let x: tf.Tensor = first.xs;
  tf.dispose(first.ys);
  for (const layer of model.layers.slice(0, last + 1)) { // nothing after the class block matters here
    if (isClassBlockConv(layer)) lifted += liftLayer(layer, x, margin);
    const next = tf.tidy(() => layer.apply(x, { training: false }) as tf.Tensor);
    x.dispose();
    x = next;
  }
  x.dispose();
  return lifted;
}

/** Lifts one convolution's biases (see liftClassBlock); returns how many it changed. */
function liftLayer(layer: tfl.layers.Layer, x: tf.Tensor, margin: number): number {
  const [kernel, bias] = layer.getWeights();
  const config = layer.getConfig() as { strides: [number, number]; padding: 'valid' | 'same' };
  const [newBias, count] = tf.tidy(() => {
    const z = tf.add(tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, config.strides, config.padding), bias);
    // Shortfalls within rounding of the margin (a channel lifted before) count as met.
    const short = tf.sub(margin, tf.min(z, [0, 1, 2]));
    const lift = tf.where(tf.greater(short, margin * 1e-4), short, tf.zerosLike(short));
    return [tf.add(bias, lift), tf.sum(tf.cast(tf.greater(lift, 0), 'int32'))];
  });
  const changed = count.dataSync()[0];
  if (changed > 0) layer.setWeights([kernel, newBias]);
  tf.dispose([newBias, count]);
  return changed;
}
