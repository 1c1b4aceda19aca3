/**
 * The names of this project's own tfjs kernels, which no tfjs backend has. native.ts registers
 * them (with the Node addon) and fusedTraining.ts runs them; the names live apart from the
 * addon's loader so that code which only asks for a kernel by name (the training loop, in the
 * web page's worker too) imports no Node built-in.
 */

/**
 * The backward pass of relu(conv + bias) up to the convolution's gradients. Inputs `dy`, `y`
 * (the layer's output); outputs [dz = dy · step(y), db = dz summed over all but the last axis].
 */
export const RELU_BACKPROP = 'NinReluBackprop';

/**
 * The same for maxPool(relu(conv + bias)), attrs those of MaxPool: inputs `dy` (the pool's
 * output gradient), `y` (the pool's input); outputs [dz = maxPoolGrad(dy, y) · step(y), db].
 * The same bits as MaxPoolGrad followed by NinReluBackprop, in one pass over y.
 */
export const POOL_RELU_BACKPROP = 'NinMaxPoolReluBackprop';
