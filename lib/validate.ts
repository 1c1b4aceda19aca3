/**
 * Small checks shared by every config resolver. Each throws a {@link ConfigError} whose
 * message names the option, the bad value, and what would be accepted, so the command line
 * can print it as one line.
 */

/** An input or option the user can fix; the CLI prints its message alone, without a stack. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A positive integer, optionally bounded: `positiveInt('batchSize', 0)` throws. */
export function positiveInt(name: string, value: unknown, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new ConfigError(`${name} must be ${range}, got ${show(value)}`);
  }
  return value;
}

/** A finite number strictly greater than zero (learning rates and the like). */
export function positiveFinite(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(`${name} must be a positive finite number, got ${show(value)}`);
  }
  return value;
}

/** A number in [lo, hi) — e.g. a dropout rate. */
export function inRange(name: string, value: unknown, lo: number, hi: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value >= hi) {
    throw new ConfigError(`${name} must be a number in [${lo}, ${hi}), got ${show(value)}`);
  }
  return value;
}

/** One of a fixed set of strings. */
export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got ${show(value)}`);
  }
  return value as T;
}

/** Rejects keys that are not part of a config, so a typo (`lerningRate`) is not silently ignored. */
export function knownKeys(part: string, given: object, defaults: object): void {
  for (const key of Object.keys(given)) {
    if (!(key in defaults)) {
      throw new ConfigError(`unknown ${part} option "${key}"; known: ${Object.keys(defaults).join(', ')}`);
    }
  }
}

/**
 * A config with `defaults` under what `partial` gives (fields given as undefined keep their
 * default), after rejecting unknown fields. Each part's resolver then checks the values.
 */
export function withDefaults<T extends object>(part: string, partial: Partial<T>, defaults: Readonly<T>): T {
  knownKeys(part, partial, defaults);
  const given = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  return { ...defaults, ...given } as T;
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
