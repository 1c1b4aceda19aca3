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
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    throw new ConfigError((n) => `${n} ${value} is ${beyondExact(value)}`, name);
  }
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
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    throw new ConfigError(`the ${part} options must be an object of settings, got ${Array.isArray(given) ? 'an array' : String(given)}`);
  }
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

/**
 * Where an integer too large to be exact lies: `beyond the largest exact integer,
 * 9007199254740991` (numbers past 2^53 are rounded, so `2^53 + 1` reads as `2^53`).
 */
export function beyondExact(value: number): string {
  return value < 0
    ? `beyond the smallest exact integer, ${Number.MIN_SAFE_INTEGER}`
    : `beyond the largest exact integer, ${Number.MAX_SAFE_INTEGER}`;
}

/** The environment as {@link envChoice} and {@link envInt} read it (`process.env` in Node). */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * An environment variable that takes one of a few words, read as strictly as a flag: unset
 * or empty means undefined (the default applies); anything else must be one of `allowed`
 * exactly (no trimming, no other case), else a ConfigError naming the variable itself:
 * `NIN_NATIVE must be 0 or 1, got "false"`.
 */
export function envChoice<T extends string>(name: string, env: Env, allowed: readonly T[]): T | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  const choices = allowed.length === 2 ? `${allowed[0]} or ${allowed[1]}` : `one of ${allowed.join(', ')}`;
  throw new ConfigError(`${name} must be ${choices}, got ${JSON.stringify(value)}`);
}

/**
 * An environment variable that holds a whole number of at least `min`, written in decimal
 * digits alone (no sign, spaces, exponent or fraction); unset or empty means undefined. A
 * ConfigError names the variable: `OMP_NUM_THREADS must be an integer >= 1, got "0"`.
 */
export function envInt(name: string, env: Env, min = 1): number | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (Number.isInteger(n) && !Number.isSafeInteger(n)) throw new ConfigError(`${name} ${value} is ${beyondExact(n)}`);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}
