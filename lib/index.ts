/**
 * nin-tfjs: the Network in Network chapter of Dive into Deep Learning on TensorFlow.js.
 *
 *   import { selectBackend, loadFashionMnist, nin, train } from 'nin-tfjs';
 *   await selectBackend();                       // tfjs-node(-gpu) > wasm > cpu
 *   const data = await loadFashionMnist();
 *   const model = nin({ inputSize: 96 });
 *   const history = await train(model, data, { resize: 96, numEpochs: 1 });
 *
 * Importing does nothing by itself: backends load, models build and data is read only when
 * the functions are called.
 */
export * from './validate';
export * from './random';
export * from './backend';
export * from './model';
export * from './data/idx';
export * from './data/fashionMnist';
export * from './trainConfig';
export * from './optimizers';
export * from './train';
export * from './trainingRun';
export * from './folderLock';
export * from './files';
export * from './layersFolder';
export * from './optimizerState';
export * from './health';
export * from './checkpoint';
export * from './evaluate';
export * from './classMaps';
export * from './classBlockLift';
export * from './fusedTraining';
export { main as runCli } from './cli';
export * from './bench';
export * from './timeBudget';
export * from './plots';
export * from './notebook';
export * from './profiles';
