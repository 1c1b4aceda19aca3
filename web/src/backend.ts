/**
 * The backend the page and its worker run on: WebGL where there is a GPU, else WebAssembly
 * (tfjs-backend-wasm, its .wasm files served from the page's own wasm/ folder), else plain
 * JavaScript. A WebGL that a CPU emulates (SwiftShader, llvmpipe: what a machine without a GPU
 * offers) is far slower than wasm and is passed over. `?backend=webgl|wasm|cpu` forces one.
 * On wasm the library's own kernels (lib/kernels/wasmConvGrad.ts, wasmShare.ts) are registered,
 * as the Node backend does.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmConvGradients } from '../../lib/kernels/wasmConvGrad';
import { registerWasmSharing } from '../../lib/kernels/wasmShare';

/** The WebGL renderer's name, or undefined without WebGL. */
function webglRenderer(): string | undefined {
  try {
    const canvas: OffscreenCanvas | HTMLCanvasElement = typeof OffscreenCanvas !== 'undefined'
      ? new OffscreenCanvas(1, 1) : document.createElement('canvas');
    const gl = (canvas.getContext('webgl2') ?? canvas.getContext('webgl')) as WebGLRenderingContext | null;
    if (!gl) return undefined;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return name;
  } catch {
    return undefined;
  }
}

export interface Backend { name: string; why: string }

export async function chooseBackend(base: string, forced: string | null): Promise<Backend> {
  setWasmPaths(new URL('wasm/', base).href);
  // Stock tfjs-backend-wasm cannot train a convnet (no Conv2DBackpropFilter): the library's
  // wasm gradient kernels (lib/kernels/wasmConvGrad.ts) and its no-copy Identity/Cast, as in Node.
  registerWasmConvGradients();
  registerWasmSharing();
  if (forced) {
    try {
      if (await tf.setBackend(forced)) return { name: forced, why: `asked for in the URL (backend=${forced})` };
    } catch { /* below */ }
  }
  const renderer = webglRenderer();
  const software = renderer === undefined ? undefined : /swiftshader|llvmpipe|softpipe|software|basic render/i.exec(renderer)?.[0];
  const candidates: [string, string][] = [];
  if (renderer !== undefined && !software) candidates.push(['webgl', `a GPU (${renderer})`]);
  const noGpu = renderer === undefined ? 'no WebGL here' : `WebGL here is emulated on the CPU (${software}), slower than wasm`;
  candidates.push(['wasm', noGpu], ['cpu', `${noGpu}, and no WebAssembly`]);
  for (const [name, why] of candidates) {
    try {
      if (await tf.setBackend(name)) return { name, why };
    } catch { /* the next one */ }
  }
  await tf.setBackend('cpu');
  return { name: 'cpu', why: 'nothing else started' };
}

export const backendLabel = (name: string) => ({ webgl: 'WebGL', wasm: 'WebAssembly (wasm)', cpu: 'plain JavaScript (cpu)' }[name] ?? name);
