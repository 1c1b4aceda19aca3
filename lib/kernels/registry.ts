/**
 * Replacing a backend's kernels and putting them back: the one mechanism every kernel layer
 * of this project uses (wasmConvGrad, wasmShare, native).
 */
import { getKernel, KernelConfig, KernelFunc, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';

/** A set of kernels put in place of a backend's own; `restore` puts those back. */
export class KernelReplacement {
  /** The kernels replaced, by name (undefined: the backend had none, as wasm has no Conv2DBackpropFilter). */
  private readonly previous = new Map<string, KernelFunc | undefined>();

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
      const current = getKernel(name, this.backend)?.kernelFunc;
      if (current === undefined && !optional.includes(name)) throw new Error(`the ${this.backend} backend has no ${name} kernel to replace`);
      this.previous.set(name, current);
      if (current !== undefined) unregisterKernel(name, this.backend);
      registerKernel({ kernelName: name, backendName: this.backend, kernelFunc: make(current) } as KernelConfig);
    }
  }

  /** The kernel `name` replaced; throws when there was none. */
  original(name: string): KernelFunc {
    const kernel = this.previous.get(name);
    if (kernel === undefined) throw new Error(`no stock ${name} kernel on ${this.backend} to fall back on`);
    return kernel;
  }

  /** Puts the replaced kernels back (and removes those that had none). */
  restore(): void {
    for (const [name, kernelFunc] of this.previous) {
      unregisterKernel(name, this.backend);
      if (kernelFunc !== undefined) registerKernel({ kernelName: name, backendName: this.backend, kernelFunc });
    }
    this.previous.clear();
  }
}
