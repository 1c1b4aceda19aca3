/**
 * Small checks shared by every config resolver. Each throws a {@link ConfigError} whose
 * message names the option, the bad value, and what would be accepted, so the command line
 * can print it as one line.
 */

/** Writes a message given the name of its field, and a way to name other fields. */
export type Render = (name: string, nameOf: (field: string) => string) => string;

/**
 * A failure the user can act on (a bad option, a damaged file, a dead network): each front
 * end prints its message alone, without a stack.
 *
 * Fields are data, not words: a message that names config fields is written as a function of
 * their names, and `field` is the one it is about, so each front end says it in its own words
 * (the command line its flags, `err.messageFor({ lr: '--lr' })`); `message` names the fields
 * as the library's configs do.
 */
export class UserError extends Error {
  override name = 'UserError';
  private readonly render?: Render;

  constructor(message: string | Render, readonly field?: string) {
    super(typeof message === 'string' ? message : message(field ?? '', (f) => f));
    if (typeof message !== 'string') this.render = message;
  }

  /**
   * The message with fields called what `names` calls them (a table, or a function of the
   * field); unchanged when written as plain text.
   */
  messageFor(names: Record<string, string> | ((field: string) => string)): string {
    const nameOf = typeof names === 'function' ? names : (f: string) => names[f] ?? f;
    return this.render ? this.render(nameOf(this.field ?? ''), nameOf) : this.message;
  }
}

/** An input or option the user can fix. */
export class ConfigError extends UserError {
  override name = 'ConfigError';
}

/** A positive integer, optionally bounded: `positiveInt('batchSize', 0)` throws. */
export function positiveInt(name: string, value: unknown, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new ConfigError((n) => `${n} must be ${range}, got ${show(value)}`, name);
  }
  return value;
}

/** A finite number strictly greater than zero (learning rates and the like). */
export function positiveFinite(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError((n) => `${n} must be a positive finite number, got ${show(value)}`, name);
  }
  return value;
}

/** A number in [lo, hi) — e.g. a dropout rate. */
export function inRange(name: string, value: unknown, lo: number, hi: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value >= hi) {
    throw new ConfigError((n) => `${n} must be a number in [${lo}, ${hi}), got ${show(value)}`, name);
  }
  return value;
}

/** One of a fixed set of strings. */
export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ConfigError((n) => `${n} must be one of ${allowed.join(', ')}, got ${show(value)}`, name);
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

/** The first line of an error's message (or of the thrown value), for one-line reports. */
export function errorSummary(err: unknown): string {
  return String(err instanceof Error ? err.message : (err as { message?: unknown } | null)?.message ?? err).split('\n')[0];
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
