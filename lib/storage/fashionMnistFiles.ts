/**
 * Fashion-MNIST's files: where the four IDX files are, downloading them when they are nowhere,
 * and reading them into splits (decoded by lib/core/fashionMnist.ts).
 *
 * Search order: `dataDir`, then `FASHION_MNIST_DIR`, then the package's `data/`, then Debian's
 * `/usr/share/datasets/fashion-mnist` (`apt-get install dataset-fashion-mnist`). An explicit
 * directory (option or environment) must hold all four files: no silent fallback.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { packageRoot } from './paths';
import { FileError, fileKind, Say, statOrUndefined } from './files';
import { readIdxFile } from './idxFile';
import { decodeSplit, FashionMnistSplit } from '../core/fashionMnist';
import { dataFileError } from '../core/idx';
import { ConfigError, knownKeys, positiveInt, withDefaults } from '../core/validate';

/** The four files by role; each may be present as `NAME.gz` (preferred) or raw `NAME`. */
export const FASHION_MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

export type FashionMnistFile = keyof typeof FASHION_MNIST_FILES;
const ROLES = Object.keys(FASHION_MNIST_FILES) as FashionMnistFile[];

/** Where the canonical `NAME.gz` files are served. */
export const FASHION_MNIST_BASE_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';

/**
 * md5 of the canonical `.gz` downloads. Only downloads are checked: Debian's copies are
 * recompressed, so their `.gz` bytes differ while the data inside is the same.
 */
export const FASHION_MNIST_MD5: Readonly<Record<FashionMnistFile, string>> = {
  trainImages: '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
  trainLabels: '25c81989df183df01b3e8a0aad5dffbe',
  testImages: 'bef4ecab320f06d8554ea6380940ec79',
  testLabels: 'bb300cfdad3c16e7a12a480ee83cd310',
};

/** Where the Debian package `dataset-fashion-mnist` installs the files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Environment variable naming a directory that holds the four files. */
const FASHION_MNIST_DIR_ENV = 'FASHION_MNIST_DIR';

const APT_HINT = '`apt-get install dataset-fashion-mnist`';

/** The `data/` folder at the package root. */
export function projectDataDir(): string {
  return path.join(packageRoot(), 'data');
}

// ---------------------------------------------------------------------------------------------
// Config

/** How to find (or fetch) Fashion-MNIST and how much of it to use. */
export interface DataConfig {
  /**
   * Directory holding the four files; when given it must hold them all (no fallback).
   * @default undefined (search FASHION_MNIST_DIR, then data/, then the Debian directory)
   */
  dataDir?: string;
  /**
   * Download into {@link projectDataDir} when the files are found nowhere.
   * @default true
   */
  download: boolean;
  /**
   * Use only the first N training examples.
   * @default undefined (all 60000)
   */
  trainLimit?: number;
  /**
   * Use only the first N test examples.
   * @default undefined (all 10000)
   */
  testLimit?: number;
  /**
   * Where to download `NAME.gz` from (a trailing `/` is added when missing).
   * @default FASHION_MNIST_BASE_URL
   */
  baseUrl: string;
  /**
   * Expected md5 (hex) of each downloaded `.gz` file.
   * @default FASHION_MNIST_MD5
   */
  checksums: Record<FashionMnistFile, string>;
}

/** Fills the defaults of a data config and checks every field. */
export function resolveDataConfig(partial: Partial<DataConfig> = {}): DataConfig {
  const defaults: DataConfig = {
    dataDir: undefined,
    download: true,
    trainLimit: undefined,
    testLimit: undefined,
    baseUrl: FASHION_MNIST_BASE_URL,
    checksums: { ...FASHION_MNIST_MD5 },
  };
  const c = withDefaults('data', partial, defaults);
  if (c.dataDir !== undefined && (typeof c.dataDir !== 'string' || c.dataDir.trim() === '')) {
    throw new ConfigError((n) => `${n} must be a directory path, got ${JSON.stringify(c.dataDir)}`, 'dataDir');
  }
  if (typeof c.download !== 'boolean') throw new ConfigError(`download must be true or false, got ${String(c.download)}`);
  if (c.trainLimit !== undefined) positiveInt('trainLimit', c.trainLimit);
  if (c.testLimit !== undefined) positiveInt('testLimit', c.testLimit);
  return { ...c, baseUrl: checkBaseUrl(c.baseUrl), checksums: checkChecksums(c.checksums) };
}

function checkBaseUrl(value: unknown): string {
  let url: URL | undefined;
  try {
    url = new URL(String(value));
  } catch {
    url = undefined;
  }
  if (typeof value !== 'string' || !url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new ConfigError(`baseUrl must be an http:// or https:// URL, got ${JSON.stringify(value)}`);
  }
  return value.endsWith('/') ? value : `${value}/`;
}

function checkChecksums(value: unknown): Record<FashionMnistFile, string> {
  if (!value || typeof value !== 'object') {
    throw new ConfigError(`checksums must map ${ROLES.join(', ')} to md5 hex strings, got ${String(value)}`);
  }
  knownKeys('checksums', value, FASHION_MNIST_MD5);
  const given = value as Partial<Record<FashionMnistFile, unknown>>;
  const checked = {} as Record<FashionMnistFile, string>;
  for (const role of ROLES) {
    const md5 = given[role];
    if (typeof md5 !== 'string' || !/^[0-9a-f]{32}$/i.test(md5)) {
      throw new ConfigError(`checksums.${role} must be an md5 of 32 hex digits, got ${JSON.stringify(md5)}`);
    }
    checked[role] = md5.toLowerCase();
  }
  return checked;
}

// ---------------------------------------------------------------------------------------------
// Locating

/** The places searched after the option; tests point them at temporary folders. */
export interface SearchPlaces {
  /**
   * Environment read for FASHION_MNIST_DIR.
   * @default process.env
   */
  env: Record<string, string | undefined>;
  /**
   * Third place searched, and where downloads go.
   * @default projectDataDir()
   */
  projectDir: string;
  /**
   * Last place searched.
   * @default DEBIAN_FASHION_MNIST_DIR
   */
  debianDir: string;
}

function searchPlaces(partial: Partial<SearchPlaces>): SearchPlaces {
  return {
    env: partial.env ?? process.env,
    projectDir: partial.projectDir ?? projectDataDir(),
    debianDir: partial.debianDir ?? DEBIAN_FASHION_MNIST_DIR,
  };
}

export type DataSource = 'option' | 'env' | 'project' | 'debian';

export interface FashionMnistLocation {
  dir: string;
  source: DataSource;
  /** Resolved path of each file (`NAME.gz` when both forms exist). */
  files: Record<FashionMnistFile, string>;
}

/**
 * Finds a directory holding all four files, or null when there is none. A directory named by
 * `dataDir` or FASHION_MNIST_DIR that is missing or incomplete is an error, not a fallback.
 */
export function locateFashionMnist(
  config: DataConfig,
  places: Partial<SearchPlaces> = {},
): FashionMnistLocation | null {
  const where = searchPlaces(places);
  if (config.dataDir !== undefined) {
    const dir = path.resolve(config.dataDir);
    return { dir, source: 'option', files: requireComplete(dir, 'option', config) };
  }
  const fromEnv = where.env[FASHION_MNIST_DIR_ENV];
  if (fromEnv) {
    const dir = path.resolve(fromEnv);
    return { dir, source: 'env', files: requireComplete(dir, 'env', config) };
  }
  for (const [dir, source] of [[where.projectDir, 'project'], [where.debianDir, 'debian']] as const) {
    const { files, missing } = filesIn(dir);
    if (missing.length === 0) return { dir, source, files };
  }
  return null;
}

/**
 * The files of a directory named by the user (the `dataDir` option or FASHION_MNIST_DIR), or
 * a ConfigError saying what is wrong with it; the option is named as each front end names it.
 */
function requireComplete(dir: string, from: 'option' | 'env', config: DataConfig): Record<FashionMnistFile, string> {
  const source = (nameOf: (field: string) => string) => (from === 'option' ? nameOf('dataDir') : FASHION_MNIST_DIR_ENV);
  const undo = (nameOf: (field: string) => string) => (from === 'option' ? `leave out ${nameOf('dataDir')}` : `unset ${FASHION_MNIST_DIR_ENV}`);
  const fix = (nameOf: (field: string) => string) =>
    `put the four Fashion-MNIST files (from ${config.baseUrl}) there, or ${undo(nameOf)} to search data/ and ${DEBIAN_FASHION_MNIST_DIR}`;
  const problem = (say: Say) => new ConfigError(say, 'dataDir');
  const named = (nameOf: (field: string) => string) => `Fashion-MNIST directory ${dir} (from ${source(nameOf)})`;
  const stat = statOrUndefined(dir, `Fashion-MNIST directory (from ${from === 'option' ? 'dataDir' : FASHION_MNIST_DIR_ENV})`);
  if (!stat) throw problem((_, nameOf) => `${named(nameOf)} does not exist; ${fix(nameOf)}`);
  if (!stat.isDirectory()) throw problem((_, nameOf) => `${named(nameOf)} is not a directory; ${fix(nameOf)}`);
  try {
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.X_OK);
  } catch {
    throw problem((_, nameOf) => `${named(nameOf)} cannot be read; fix its permissions, or ${undo(nameOf)}`);
  }
  const { files, missing, odd } = filesIn(dir);
  if (odd.length > 0) {
    throw new FileError((_, nameOf) => `${odd[0]}, in ${named(nameOf)}, is not a regular file; replace it with the ` +
      'Fashion-MNIST file of that name', undefined, 'dataDir');
  }
  if (missing.length > 0) throw problem((_, nameOf) => `${named(nameOf)} is missing ${missing.join(', ')}; ${fix(nameOf)}`);
  return files;
}

/**
 * Which of the four files `dir` holds (preferring `NAME.gz`), the names of the others, and
 * entries under those names that are not regular files (a FIFO, a device: never read), as
 * `PATH (a FIFO (named pipe))`.
 */
function filesIn(dir: string): { files: Record<FashionMnistFile, string>; missing: string[]; odd: string[] } {
  const files = {} as Record<FashionMnistFile, string>;
  const missing: string[] = [];
  const odd: string[] = [];
  for (const role of ROLES) {
    const name = FASHION_MNIST_FILES[role];
    const candidates = [`${name}.gz`, name].map((n) => path.join(dir, n));
    const found = candidates.find(isFile);
    if (found) {
      files[role] = found;
      continue;
    }
    missing.push(`${name}[.gz]`);
    for (const c of candidates) {
      const stat = fs.statSync(c, { throwIfNoEntry: false });
      if (stat) odd.push(`${c} (${fileKind(stat)})`);
    }
  }
  return { files, missing, odd };
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;
  } catch {
    return false; // a symbolic-link loop, a permission: not a file we can use
  }
}

/** "Fashion-MNIST not found (looked in A, B and C)": the start of every "not found" message, with the option named by `nameOf`. */
function notFound(config: DataConfig, where: SearchPlaces, nameOf: (field: string) => string): string {
  const env = where.env[FASHION_MNIST_DIR_ENV];
  const looked = [
    config.dataDir !== undefined ? `${nameOf('dataDir')} ${path.resolve(config.dataDir)}` : undefined,
    env ? `${FASHION_MNIST_DIR_ENV}=${env}` : `${FASHION_MNIST_DIR_ENV} (unset)`,
    where.projectDir,
    `${where.debianDir} (Debian package)`,
  ].filter((s) => s !== undefined);
  return `Fashion-MNIST not found (looked in ${looked.join(', ')})`;
}

function howToGetIt(config: DataConfig, where: SearchPlaces, nameOf: (field: string) => string): string {
  return `install it with ${APT_HINT}, or download the four .gz files from ${config.baseUrl} into ${where.projectDir}, ` +
    `or pass ${nameOf('dataDir')} DIR`;
}

// ---------------------------------------------------------------------------------------------
// Downloading

/**
 * Downloads each of the four files missing from `dir` as `NAME.gz`: into `NAME.gz.part-PID`
 * first, then renamed into place once its md5 matches, so a failure never leaves a file
 * that looks complete. Any failure throws one ConfigError.
 */
export async function downloadFashionMnist(
  dir: string,
  config: DataConfig,
  places: Partial<SearchPlaces> = {},
): Promise<void> {
  const where = searchPlaces(places);
  const failed = (url: string, err: unknown) => new ConfigError((_, nameOf) => `${notFound(config, where, nameOf)} and the ` +
    `download from ${url} failed (${failureReason(err)}); ${howToGetIt(config, where, nameOf)}`, 'dataDir');

  for (const role of ROLES) {
    const name = `${FASHION_MNIST_FILES[role]}.gz`;
    if (filesIn(dir).files[role]) continue;
    const url = new URL(name, config.baseUrl).href;
    const target = path.join(dir, name);
    const part = `${target}.part-${process.pid}`;
    try {
      let md5: string;
      try {
        md5 = await fetchToFile(url, part);
      } catch (err) {
        throw failed(url, err);
      }
      const expected = config.checksums[role];
      if (md5 !== expected) {
        throw new ConfigError(
          `${name} downloaded from ${url} has md5 ${md5}, expected ${expected}; it was not saved: try again later, or put a good copy in ${dir}`,
        );
      }
      fs.renameSync(part, target);
    } catch (err) {
      fs.rmSync(part, { force: true });
      throw err instanceof ConfigError ? err : failed(url, err);
    }
  }
}

/** Streams `url` into `file` (creating its folder) and returns the md5 (hex) of what was written. */
async function fetchToFile(url: string, file: string): Promise<string> {
  const response = await fetch(url);
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const hash = crypto.createHash('md5');
  await pipeline(
    Readable.fromWeb(response.body as unknown as NodeReadableStream<Uint8Array>),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        yield chunk;
      }
    },
    fs.createWriteStream(file),
  );
  return hash.digest('hex');
}

/** The most useful line of a fetch error: Node wraps the socket error as `cause`. */
function failureReason(err: unknown): string {
  const cause = (err as { cause?: unknown } | null)?.cause ?? err;
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown };
  if (typeof message === 'string' && message !== '') return message.split('\n')[0];
  if (typeof code === 'string') return code;
  return String(cause);
}

// ---------------------------------------------------------------------------------------------
// Loading

export interface FashionMnist {
  train: FashionMnistSplit;
  test: FashionMnistSplit;
  dir: string;
  /** Where `dir` came from; 'download' when it was just downloaded into data/. */
  source: DataSource | 'download';
  /** Resolved path of each file. */
  files: Record<FashionMnistFile, string>;
}

/** Locates (downloading when allowed and needed), reads and checks the four files. */
export async function loadFashionMnist(
  partial: Partial<DataConfig> = {},
  places: Partial<SearchPlaces> = {},
): Promise<FashionMnist> {
  const config = resolveDataConfig(partial);
  const location = await findOrDownload(config, searchPlaces(places));
  const { files } = location;
  const { split: train, total: trainTotal } = readSplit(files.trainImages, files.trainLabels, config.trainLimit);
  const { split: test, total: testTotal } = readSplit(files.testImages, files.testLabels, config.testLimit);
  if (trainTotal < testTotal) {
    throw new ConfigError(`${files.trainImages} holds ${trainTotal} images but the test file ${files.testImages} holds ` +
      `${testTotal}: the training and test files look swapped (Fashion-MNIST has 60,000 training and 10,000 test ` +
      'images); rename them so that train-* is the larger split');
  }
  if (train.height !== test.height || train.width !== test.width) {
    throw dataFileError(
      files.testImages,
      `holds ${test.height}x${test.width} images but ${files.trainImages} holds ${train.height}x${train.width}`,
    );
  }
  return { train, test, ...location };
}

async function findOrDownload(config: DataConfig, where: SearchPlaces): Promise<Omit<FashionMnist, 'train' | 'test'>> {
  const found = locateFashionMnist(config, where);
  if (found) return found;
  if (!config.download) {
    throw new ConfigError((_, nameOf) => `${notFound(config, where, nameOf)} and downloading is turned off; ` +
      howToGetIt(config, where, nameOf), 'dataDir');
  }
  await downloadFashionMnist(where.projectDir, config, where);
  return { dir: where.projectDir, source: 'download', files: filesIn(where.projectDir).files };
}

/** One split, cut to `limit` examples, and how many the files hold in all. */
function readSplit(imagesFile: string, labelsFile: string, limit: number | undefined): { split: FashionMnistSplit; total: number } {
  return decodeSplit(readIdxFile(imagesFile), readIdxFile(labelsFile), imagesFile, labelsFile, limit);
}
