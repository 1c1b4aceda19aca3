/**
 * Choosing where tensors run.
 *
 * Preference order for `auto`: native TensorFlow with CUDA (`@tensorflow/tfjs-node-gpu`),
 * native TensorFlow on the CPU (`@tensorflow/tfjs-node`), WebAssembly with XNNPACK
 * (`@tensorflow/tfjs-backend-wasm`, always installed), then plain JavaScript (`cpu`).
 * The native packages are optional: their install script downloads libtensorflow, which
 * only works with internet access, so they are never a hard dependency. A package that is
 * installed but fails to load (say, a CUDA library missing) is reported, then skipped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, envChoice, errorSummary, oneOf } from '../core/validate';
import { registerWasmConvGradients } from './wasmConvGrad';
import { registerWasmSharing } from './wasmShare';
import { checkNativeEnv, registerNativeConvolutions, unregisterNativeConvolutions } from './native';

/** What a user may ask for. `tensorflow` means either native package (GPU first). */
export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/**
 * What `NIN_NATIVE` may be: `1` runs the native kernels on wasm where they are built (the
 * default, also when unset or empty), `0` leaves wasm's own. Anything else is refused, not
 * taken for 1 (`NIN_NATIVE=false` once kept the native kernels).
 */
const NIN_NATIVE_CHOICES = ['0', '1'] as const;

export interface BackendInfo {
  /** tfjs backend name now active: `tensorflow`, `wasm` or `cpu`. */
  name: string;
  /** Human-readable: package, and for wasm whether SIMD and threads are in use. */
  description: string;
  /** One line per candidate that was passed over, and why. */
  skipped: string[];
  /**
   * What the user set that was changed to work (OMP_NUM_THREADS above the CPUs there are,
   * capped), one line each; the description says it too.
   */
  notes?: string[];
}

export interface BackendOptions {
  /**
   * On wasm, run convolutions with the native OpenBLAS addon when it is built
   * (lib/kernels/native.ts). Default: $NIN_NATIVE (see {@link NIN_NATIVE_CHOICES}), else true.
   */
  native?: boolean;
}

interface Candidate {
  name: 'tensorflow' | 'wasm' | 'cpu';
  pkg: string;
  /** Loads the package (registering its backend); throws if it cannot. */
  load: () => void;
}

/** Node's require, kept out of TypeScript's and bundlers' static view of imports. */
function load(pkg: string): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(pkg);
}

function isMissing(err: unknown, pkg: string): boolean {
  const e = err as NodeJS.ErrnoException;
  return e?.code === 'MODULE_NOT_FOUND' && String(e.message).includes(`'${pkg}'`);
}

function candidates(choice: BackendChoice): Candidate[] {
  const native: Candidate[] = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].map((pkg) => ({
    name: 'tensorflow' as const, pkg, load: () => load(pkg),
  }));
  const wasm: Candidate = {
    name: 'wasm', pkg: '@tensorflow/tfjs-backend-wasm',
    load: () => { load('@tensorflow/tfjs-backend-wasm'); registerWasmConvGradients(); registerWasmSharing(); },
  };
  const cpu: Candidate = { name: 'cpu', pkg: '@tensorflow/tfjs-backend-cpu', load: () => load('@tensorflow/tfjs-backend-cpu') };
  switch (choice) {
    case 'auto': return [...native, wasm, cpu];
    case 'tensorflow': return native;
    case 'wasm': return [wasm];
    case 'cpu': return [cpu];
  }
}

let selected: BackendInfo | undefined;

/** The backend the last {@link selectBackend} activated, if it is still the active one. */
export function selectedBackend(): BackendInfo | undefined {
  return selected?.name === tf.getBackend() ? selected : undefined;
}

/**
 * Activates a backend and says which. `choice` defaults to `$NIN_BACKEND`, else `auto`.
 * An explicit choice that cannot be had is an error (with the reason); `auto` falls through.
 */
export async function selectBackend(choice?: string, options: BackendOptions = {}): Promise<BackendInfo> {
  // $NIN_BACKEND: one of BACKEND_CHOICES; unset or empty means auto. Named as itself when wrong.
  const wanted = choice === undefined
    ? envChoice('NIN_BACKEND', process.env, BACKEND_CHOICES) ?? 'auto'
    : oneOf('backend', choice, BACKEND_CHOICES);
  const native = options.native ?? envChoice('NIN_NATIVE', process.env, NIN_NATIVE_CHOICES) !== '0';
  // What the native addon reads as it loads, checked before anything slow starts.
  if (native && (wanted === 'auto' || wanted === 'wasm')) checkNativeEnv();
  // The union package registers tfjs-core's gradient functions (its CommonJS build leaves
  // them out) and the cpu backend; training needs the former.
  load('@tensorflow/tfjs');
  const skipped: string[] = [];
  for (const c of candidates(wanted)) {
    try {
      c.load();
    } catch (err) {
      skipped.push(isMissing(err, c.pkg) ? `${c.pkg}: not installed` : `${c.pkg}: failed to load (${errorSummary(err)})`);
      continue;
    }
    if (tf.findBackendFactory(c.name) == null) {
      skipped.push(`${c.pkg}: loaded but registered no "${c.name}" backend`);
      continue;
    }
    if (!(await tf.setBackend(c.name))) {
      skipped.push(`${c.pkg}: backend "${c.name}" failed to initialise`);
      continue;
    }
    await tf.ready();
    let description = await describe(c);
    const notes: string[] = [];
    if (c.name === 'wasm') {
      if (native) {
        const kernels = registerNativeConvolutions();
        description += kernels.active ? ` + ${kernels.description}` : '';
        if (!kernels.active) skipped.push(kernels.description);
        if (kernels.note !== undefined) notes.push(kernels.note);
      } else {
        unregisterNativeConvolutions();
      }
    }
    selected = { name: c.name, description, skipped, notes };
    return selected;
  }
  const why = skipped.join('; ');
  const install = 'install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node';
  if (choice !== undefined) {
    // The caller's choice: a field, which each front end names in its own words (--backend).
    const hint = (n: string) => wanted === 'tensorflow' ? `${install}, or use ${n} wasm` : 'reinstall the dependencies with `npm ci`';
    throw new ConfigError((n) => `${n} ${wanted} is not available (${why}); ${hint(n)}`, 'backend');
  }
  if (wanted === 'tensorflow') throw new ConfigError(`NIN_BACKEND=tensorflow is not available (${why}); ${install}, or set NIN_BACKEND=wasm`);
  throw new ConfigError(`${process.env.NIN_BACKEND ? `NIN_BACKEND=${wanted} is not available` : 'no backend is available'} (${why}); ` +
    'reinstall the dependencies with `npm ci`');
}

async function describe(c: Candidate): Promise<string> {
  if (c.name === 'wasm') {
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = (await import('@tensorflow/tfjs-backend-wasm')).getThreadsCount();
    return `wasm (XNNPACK${simd ? ', SIMD' : ''}, ${threads} thread${threads === 1 ? '' : 's'})`;
  }
  if (c.name === 'tensorflow') return `tensorflow (${c.pkg.replace('@tensorflow/', '')})`;
  return 'cpu (plain JavaScript; slow)';
}

