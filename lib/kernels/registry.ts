/**
 * Replacing a backend's kernels and putting them back: the one mechanism every kernel layer
 * of this project uses (wasmConvGrad, wasmShare, native).
 */
import { getKernel, KernelConfig, KernelFunc, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';

/**
 * A set of kernels put in place of a backend's own; `restore` puts those back. A replacement
 * keeps the replaced kernel's setup and dispose functions: wasm's kernels bind their wasm
 * functions in their setup, which the engine runs when the backend starts, so a stock kernel
 * that a replacement falls back on works even when the backend starts after the swap.
 */
export class KernelReplacement {
  /** The kernels replaced, by name (undefined: the backend had none, as wasm has no Conv2DBackpropFilter). */
  private readonly previous = new Map<string, KernelConfig | undefined>();

  constructor(readonly backend: string) {}

  /** Whether the replacement is in place. */
  get active(): boolean {
    return this.previous.size > 0;
  }

  /**
   * Registers `make(previous)` for each name, where `previous` is the kernel it replaces (or
   * undefined when the backend had none and `optional` allows it). Idempotent.
   */
  install(kernels: Record<string, (previous: KernelFunc | undefined) => KernelFunc>, optional: readonly string[] = []): void {
    if (this.active) return;
    for (const [name, make] of Object.entries(kernels)) {
      const current = getKernel(name, this.backend);
      if (current === undefined && !optional.includes(name)) throw new Error(`the ${this.backend} backend has no ${name} kernel to replace`);
      this.previous.set(name, current);
      if (current !== undefined) unregisterKernel(name, this.backend);
      registerKernel({ ...current, kernelName: name, backendName: this.backend, kernelFunc: make(current?.kernelFunc) });
    }
  }

  /** The kernel `name` replaced; throws when there was none. */
  original(name: string): KernelFunc {
    const kernel = this.previous.get(name);
    if (kernel === undefined) throw new Error(`no stock ${name} kernel on ${this.backend} to fall back on`);
    return kernel.kernelFunc;
  }

  /** Puts the replaced kernels back (and removes those that had none). */
  restore(): void {
    for (const [name, config] of this.previous) {
      unregisterKernel(name, this.backend);
      if (config !== undefined) registerKernel(config);
    }
    this.previous.clear();
  }
}
