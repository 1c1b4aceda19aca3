/**
 * Reading an IDX file from disk, gzipped or not; the bytes are decoded by lib/core/idx.ts.
 */
import * as zlib from 'node:zlib';
import { dataFileError, hex, IdxArray, parseIdx } from '../core/idx';
import { errorSummary } from '../core/validate';
import { Fix, readRegularFile } from './files';

/** What to do about a data file that cannot be read: fix it, or use a good copy elsewhere. */
const UNREADABLE: Fix = {
  field: 'dataDir',
  say: (n) => `check that it is a readable regular file, or set ${n} to a directory holding a good copy`,
};

/**
 * Reads an IDX file, gunzipping it when it starts with the gzip magic (1f 8b), whatever its
 * name. A `.gz` name over bytes that are not gzip is reported (often a saved HTML error page).
 * Only a regular file is read: a FIFO or a device is refused in one line (a read could block
 * forever or never end).
 */
export function readIdxFile(path: string): IdxArray {
  let bytes: Uint8Array = readRegularFile(path, UNREADABLE);

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

