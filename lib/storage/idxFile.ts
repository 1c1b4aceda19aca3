/**
 * Reading an IDX file from disk, gzipped or not; the bytes are decoded by lib/core/idx.ts.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { dataFileError, hex, IdxArray, parseIdx } from '../core/idx';
import { ConfigError, errorSummary } from '../core/validate';

/**
 * Reads an IDX file, gunzipping it when it starts with the gzip magic (1f 8b), whatever its
 * name. A `.gz` name over bytes that are not gzip is reported (often a saved HTML error page).
 */
export function readIdxFile(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${path}: cannot be read (${errorCode(err)}); check it exists and is readable, or point --data-dir at a good copy`);
  }

  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (err) {
      throw dataFileError(path, `is a damaged or truncated gzip file (${errorSummary(err)})`);
    }
  } else if (path.endsWith('.gz')) {
    const text = Buffer.from(bytes.subarray(0, 64)).toString('latin1').trimStart();
    const what = text.startsWith('<')
      ? 'is named .gz but holds text starting with "<", probably an HTML error page saved under that name'
      : `is named .gz but is not gzip data (starts with ${hex(bytes, 2)}, expected 1f 8b)`;
    throw dataFileError(path, what);
  }
  return parseIdx(bytes, path);
}

/** The error's code (ENOENT, EACCES, ...) when it has one, else its first line. */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : errorSummary(err);
}

