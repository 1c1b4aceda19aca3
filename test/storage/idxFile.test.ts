import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parseIdx } from '../../lib/core/idx';
import { readIdxFile } from '../../lib/storage/idxFile';
import { ConfigError } from '../../lib/core/validate';
import { idxBytes } from '../fixtures';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-idx-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, bytes: Uint8Array | string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Asserts a one-line ConfigError naming `file` and matching `problem`. */
function assertDataError(fn: () => unknown, file: string, problem: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.ok(err.message.includes(file), `message does not name ${file}: ${err.message}`);
    assert.match(err.message, problem);
    assert.doesNotMatch(err.message, /\n/, 'message should be one line');
    return true;
  });
}

const pixels = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);

test('magic numbers are the IDX ubyte codes for 3 and 1 dims', () => {
  assert.equal(IDX_IMAGES_MAGIC, 0x0803);
  assert.equal(IDX_LABELS_MAGIC, 0x0801);
});

test('parseIdx reads magic, big-endian dims and data', () => {
  const parsed = parseIdx(idxBytes([2, 3, 4], pixels), 'images');
  assert.equal(parsed.magic, IDX_IMAGES_MAGIC);
  assert.deepEqual(parsed.dims, [2, 3, 4]);
  assert.deepEqual(Array.from(parsed.data), Array.from(pixels));

  const labels = parseIdx(idxBytes([300], new Uint8Array(300)), 'labels');
  assert.equal(labels.magic, IDX_LABELS_MAGIC);
  assert.deepEqual(labels.dims, [300]);
});

test('readIdxFile reads raw and gzipped files alike', () => {
  const bytes = idxBytes([2, 3, 4], pixels);
  const raw = readIdxFile(write('raw-idx3-ubyte', bytes));
  const gz = readIdxFile(write('gz-idx3-ubyte.gz', zlib.gzipSync(bytes)));
  // Gzip is recognised by its magic bytes, not by the name.
  const unnamed = readIdxFile(write('gz-without-suffix-idx3-ubyte', zlib.gzipSync(bytes)));
  for (const parsed of [raw, gz, unnamed]) {
    assert.deepEqual(parsed.dims, [2, 3, 4]);
    assert.deepEqual(Array.from(parsed.data), Array.from(pixels));
  }
});

test('a file that is not IDX is named with the problem and the fix', () => {
  const file = write('notidx', 'PK\u0003\u0004 something else entirely');
  assertDataError(() => readIdxFile(file), file, /not an IDX file \(starts with 50 4b.*; replace it with a good copy of the file$/);
});

test('an unsupported IDX data type is reported', () => {
  const file = write('floats-idx1', idxBytes([2], new Uint8Array(8), 0x0d));
  assertDataError(() => readIdxFile(file), file, /data type 0x0d.*only unsigned bytes/);
});

test('a file too short for any header is reported', () => {
  const file = write('tiny', Buffer.from([0, 0]));
  assertDataError(() => readIdxFile(file), file, /2 bytes, too short for an IDX header/);
});

test('a header cut short is reported as truncated', () => {
  const file = write('cut-header', idxBytes([2, 3, 4], pixels).subarray(0, 10));
  assertDataError(() => readIdxFile(file), file, /truncated inside its header/);
});

test('missing data is reported as truncated with the sizes', () => {
  const file = write('cut-data', idxBytes([2, 3, 4], pixels.subarray(0, 20)));
  assertDataError(() => readIdxFile(file), file, /truncated: its header says 2x3x4 = 24 bytes of data, but only 20 follow/);
});

test('bytes after the data are reported', () => {
  const file = write('extra', idxBytes([2, 3, 4], Buffer.concat([pixels, Buffer.from([1, 2, 3])])));
  assertDataError(() => readIdxFile(file), file, /has 3 extra bytes after the 2x3x4 = 24 bytes/);
});

test('a .gz that is really an HTML page says so', () => {
  const file = write('train-images-idx3-ubyte.gz', '\n<!DOCTYPE html><html><body>404 Not Found</body></html>');
  assertDataError(() => readIdxFile(file), file, /is named \.gz but holds text starting with "<", probably an HTML error page.*; replace it with a good copy of the file$/);
});

test('a .gz that is neither gzip nor HTML says it is not gzip', () => {
  const file = write('labels.gz', idxBytes([2], new Uint8Array(2)));
  assertDataError(() => readIdxFile(file), file, /is named \.gz but is not gzip data \(starts with 00 00, expected 1f 8b\)/);
});

test('a damaged gzip file is reported as damaged or truncated', () => {
  const gz = zlib.gzipSync(idxBytes([50, 28, 28], Uint8Array.from({ length: 50 * 28 * 28 }, (_, i) => (i * 7) % 256)));
  const file = write('damaged-idx3-ubyte.gz', gz.subarray(0, Math.floor(gz.length / 2)));
  assertDataError(() => readIdxFile(file), file, /damaged or truncated gzip file/);
});

test('advice is true wherever the file came from: no command or flag to run, a good copy to put there', () => {
  const file = write('advice-idx1-ubyte', 'garbage!');
  assert.throws(() => readIdxFile(file), (err: unknown) =>
    err instanceof ConfigError && !/nin data|--data-dir|download it again/.test(err.message) && /replace it with a good copy/.test(err.message));
});

test('a missing file is reported with its path', () => {
  const file = path.join(tmp, 'does-not-exist-idx1-ubyte');
  assertDataError(() => readIdxFile(file), file, /cannot be read \(ENOENT\)/);
});
