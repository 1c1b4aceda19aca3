/**
 * Files that must survive a crash, and file-system failures said in words.
 *
 * Anything a user can cause on a disk (a full disk, a permission, a read-only mount, a
 * symbolic-link loop) becomes a {@link FileError}: one line naming the path, what went wrong
 * and what to do, never an "internal error".
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, errorSummary } from '../core/validate';

/** Words given the name of their field and a way to name other fields (as ConfigError takes a message). */
export type Say = (name: string, nameOf: (field: string) => string) => string;

/**
 * What to do about a problem: plain words, or words that name config fields, written as a
 * function of their names (`field` is the one it is about) so that each front end says them
 * its own way: the command line as flags, the library as field names.
 */
export type Fix = string | { field: string; say: Say };

/** `problem; fix` as a ConfigError's message and field. */
function withFix(problem: string, fix: Fix): [string | Say, string | undefined] {
  if (typeof fix === 'string') return [`${problem}; ${fix}`, undefined];
  return [(n, nameOf) => `${problem}; ${fix.say(n, nameOf)}`, fix.field];
}

/** A ConfigError saying `problem; fix`. */
export function fixError(problem: string, fix: Fix): ConfigError {
  return new ConfigError(...withFix(problem, fix));
}

/** A file-system operation failed for a reason the user can fix; the message says which. */
export class FileError extends ConfigError {
  override name = 'FileError';
  constructor(message: string | Say, readonly code?: string, field?: string) {
    super(message, field);
  }
}

const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is used up',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOENT: 'it does not exist',
  ELOOP: 'its symbolic links form a loop',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'it is a directory',
  ENOTEMPTY: 'the directory is not empty',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files on the system',
  EIO: 'an input/output error of the device',
  ENAMETOOLONG: 'the name is too long',
  EBUSY: 'it is busy',
  EXDEV: 'it is on another device',
  ENXIO: 'it is a socket or a device that is not there',
};

/** The Node error code of `err` when it is one a user can cause on a file system. */
export function userFsCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code in REASONS ? code : undefined;
}

/** "(ENOSPC): no space left on the device", or the error's own first line after a colon. */
export function fsReason(err: unknown): string {
  const code = userFsCode(err);
  if (code !== undefined) return `(${code}): ${REASONS[code]}`;
  return `: ${errorSummary(err)}`;
}

/**
 * Creates `dir` and its missing parents one level at a time. (Node 20's recursive mkdir can
 * spin forever where a parent refuses new entries, e.g. under /proc; this fails instead.)
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing) fs.mkdirSync(d);
}

/**
 * Writes `data` to `file` and flushes it to disk before returning. With `fresh`, the file must
 * not exist yet (O_EXCL: nothing already there, not even a symbolic link, is followed).
 */
export function writeSynced(file: string, data: string | Uint8Array, fresh = false): void {
  const fd = fs.openSync(file, fresh ? 'wx' : 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Flushes a directory's entries (a rename) to disk; a filesystem that refuses is left be. */
export function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems cannot fsync a directory; the rename is atomic all the same.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Writes `file` atomically: into `file.tmp-PID` (created afresh, so a symbolic link left under
 * that name is removed, never followed), flushed, then renamed over it. The rename replaces
 * whatever entry `file` is (a damaged file, a FIFO, a symbolic link: the link itself, never
 * what it points to); only a directory there makes it fail.
 */
export function replaceFile(file: string, data: string | Uint8Array, dir: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.rmSync(tmp, { force: true });
    writeSynced(tmp, data, true);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  syncDir(dir);
}

/** "a FIFO (named pipe)", "a directory", ...: what a file that is not a regular one is. */
export function fileKind(stat: fs.Stats): string {
  if (stat.isFile()) return 'a regular file';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/** The error for `file` that is not a regular file (it was `stat`). */
export function notRegularFile(file: string, stat: fs.Stats, fix: Fix): FileError {
  const [message, field] = withFix(`${file} is ${fileKind(stat)}, not a regular file`, fix);
  return new FileError(message, undefined, field);
}

/**
 * The bytes of `file`, refused in one line (a FileError) unless it is a regular file: a FIFO
 * would block the read forever, a device (`/dev/zero`) never end. The file is looked at
 * before it is opened, opened without blocking (O_NONBLOCK: opening a FIFO waits for a
 * writer otherwise), and looked at again through the open descriptor, so nothing that
 * replaces it in between is read. Symbolic links to regular files are followed.
 */
export function readRegularFile(file: string, fix: Fix): Buffer {
  const cannot = (err: unknown) => {
    const [message, field] = withFix(`${file} cannot be read ${fsReason(err)}`, fix);
    return new FileError(message, userFsCode(err), field);
  };
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw cannot(err);
  }
  if (!stat.isFile()) throw notRegularFile(file, stat, fix);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw cannot(err);
  }
  try {
    const opened = fs.fstatSync(fd);
    if (!opened.isFile()) throw notRegularFile(file, opened, fix);
    return fs.readFileSync(fd);
  } catch (err) {
    if (err instanceof FileError) throw err;
    throw cannot(err);
  } finally {
    fs.closeSync(fd);
  }
}

/** SHA-256 of `data`, in hex. */
export function sha256(data: string | Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** Parses a JSON file (a regular file: see {@link readRegularFile}), or throws a one-line ConfigError naming it and what to do. */
export function readJson(file: string, fix: Fix): unknown {
  return parseJson(readRegularFile(file, fix).toString('utf8'), file, fix);
}

/** Parses `text`, the content of `file`, or throws a one-line ConfigError naming it and what to do. */
export function parseJson(text: string, file: string, fix: Fix): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const what = text.trim() === '' ? 'is empty' : `is not valid JSON (${errorSummary(err)})`;
    throw fixError(`${file} ${what}`, fix);
  }
}

/** A plain JSON object (not null, not an array). */
export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * `fs.statSync` that tells "absent" (undefined) from a path that cannot be looked at, which
 * throws a FileError naming it (a symbolic-link loop, a permission).
 */
export function statOrUndefined(file: string, what: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FileError(`${what} ${file} cannot be used ${fsReason(err)}`, userFsCode(err));
  }
}

/** SHA-256 (hex) of files by name, as a checkpoint records them. */
export type Checksums = Record<string, string>;

/**
 * Throws a one-line ConfigError unless `data`, the content of `file`, has the SHA-256 that
 * `sums` (read from `recordedIn`) gives for its name: "…/weights.bin does not match its
 * checksum in state.json: the file is damaged; FIX".
 */
export function verifyChecksum(file: string, data: string | Uint8Array, sums: Checksums, recordedIn: string, fix: Fix): void {
  const expected = sums[path.basename(file)];
  if (expected === undefined) {
    throw fixError(`${file} has no checksum in ${recordedIn}, which records every file of its checkpoint: one of them is damaged`, fix);
  }
  if (sha256(data) !== expected) throw fixError(`${file} does not match its checksum in ${recordedIn}: the file is damaged`, fix);
}
