/**
 * Files that must survive a crash, and file-system failures said in words.
 *
 * Anything a user can cause on a disk (a full disk, a permission, a read-only mount, a
 * symbolic-link loop) becomes a {@link FileError}: one line naming the path, what went wrong
 * and what to do, never an "internal error".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, errorSummary } from '../core/validate';

/** A file-system operation failed for a reason the user can fix; the message says which. */
export class FileError extends ConfigError {
  override name = 'FileError';
  constructor(message: string, readonly code?: string) {
    super(message);
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

/** Writes `data` to `file` and flushes it to disk before returning. */
export function writeSynced(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, 'w');
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

/** Writes `file` atomically: into `file.tmp-PID`, flushed, then renamed over it. */
export function replaceFile(file: string, data: string | Uint8Array, dir: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeSynced(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  syncDir(dir);
}

/** Parses a JSON file, or throws a one-line ConfigError naming it and what to do. */
export function readJson(file: string, fix: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FileError(`${file} cannot be read ${fsReason(err)}; ${fix}`, userFsCode(err));
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const what = text.trim() === '' ? 'is empty' : `is not valid JSON (${errorSummary(err)})`;
    throw new ConfigError(`${file} ${what}; ${fix}`);
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
