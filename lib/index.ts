/**
 * nin-tfjs: the Network in Network chapter of Dive into Deep Learning on TensorFlow.js.
 *
 *   import * as nin from 'nin-tfjs';
 *   await nin.selectBackend();                        // native oneDNN > tfjs-node > wasm > cpu
 *   const data = await nin.loadFashionMnist();
 *   const run = await nin.trainNin({ train: { resize: 96, numEpochs: 1 } }, data);
 *
 * The layers, each importing only those above it in this list:
 *   core/      the chapter itself, browser-safe: model, data decoding, training step, health,
 *              evaluation, class maps, plots
 *   storage/   files: Fashion-MNIST on disk, checkpoints, the folder lock
 *   kernels/   backends and the native and wasm kernels
 *   training/  the one door to training (a run), profiles, time estimates, the benchmark
 *   frontends/ the notebook helpers (exported here) and the command line (bin/nin.js)
 *
 * Importing does nothing by itself: backends load, models build and data is read only when
 * the functions are called.
 */
export * from './core/validate';
export * from './core/random';
export * from './core/model';
export * from './core/idx';
export * from './core/fashionMnist';
export * from './core/trainConfig';
export * from './core/history';
export * from './core/optimizers';
export * from './core/health';
export * from './core/evaluate';
export * from './core/classMaps';
export * from './core/pointingGame';
export * from './core/classBlockLift';
export * from './core/plots';
export * from './storage/files';
export * from './storage/idxFile';
export * from './storage/fashionMnistFiles';
export * from './storage/folderLock';
export * from './storage/layersFolder';
export * from './storage/optimizerState';
export * from './storage/checkpoint';
export * from './kernels/backend';
export * from './kernels/fusedTraining';
export * from './training/loop';
export * from './training/run';
export * from './training/comparison';
export * from './training/profiles';
export * from './training/estimate';
export * from './training/benchmark';
export * from './frontends/notebook';
