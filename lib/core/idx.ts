/**
 * IDX bytes, the format MNIST and Fashion-MNIST ship in: a big-endian header (magic number,
 * then one uint32 per dimension) followed by the raw unsigned bytes. Every problem is a
 * one-line {@link ConfigError} naming the file, what is wrong, and what to do.
 */
import { ConfigError } from './validate';

/** Magic number of an IDX file of unsigned bytes with 3 dimensions (count, rows, columns). */
export const IDX_IMAGES_MAGIC = 2051;
/** Magic number of an IDX file of unsigned bytes with 1 dimension (count). */
export const IDX_LABELS_MAGIC = 2049;

/** IDX type byte for unsigned bytes, the only type Fashion-MNIST uses. */
const IDX_UBYTE = 0x08;

/** One parsed IDX file: `data` is a view into the bytes read, row-major over `dims`. */
export interface IdxArray {
  magic: number;
  dims: number[];
  data: Uint8Array;
}

/** What to tell the user whenever a data file is bad. */
const REPAIR = 'replace it with a good copy of the file';

/** The error for a data file that is present but bad: `FILE: PROBLEM; how to repair it`. */
export function dataFileError(file: string, problem: string): ConfigError {
  return new ConfigError(`${file}: ${problem}; ${REPAIR}`);
}

/** Parses an uncompressed IDX file; `file` only names it in error messages. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4) {
    throw dataFileError(file, `is ${bytes.length} bytes, too short for an IDX header`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw dataFileError(file, `is not an IDX file (starts with ${hex(bytes, 2)}, expected 00 00)`);
  }
  if (bytes[2] !== IDX_UBYTE) {
    throw dataFileError(file, `has IDX data type 0x${bytes[2].toString(16).padStart(2, '0')}, only unsigned bytes (0x08) are supported`);
  }
  const numDims = bytes[3];
  if (numDims === 0) throw dataFileError(file, 'has an IDX header with 0 dimensions');

  const headerLength = 4 + 4 * numDims;
  if (bytes.length < headerLength) {
    throw dataFileError(file, `is truncated inside its header (${bytes.length} bytes, the header of ${numDims} dims needs ${headerLength})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const dims: number[] = [];
  for (let i = 0; i < numDims; i++) dims.push(view.getUint32(4 + 4 * i, false));

  const dataLength = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerLength;
  const shape = dims.join('x');
  if (actual < dataLength) {
    throw dataFileError(file, `is truncated: its header says ${shape} = ${dataLength} bytes of data, but only ${actual} follow`);
  }
  if (actual > dataLength) {
    throw dataFileError(file, `has ${actual - dataLength} extra bytes after the ${shape} = ${dataLength} bytes its header announces`);
  }
  return { magic, dims, data: bytes.subarray(headerLength) };
}

export function hex(bytes: Uint8Array, count: number): string {
  return Array.from(bytes.subarray(0, count), (b) => b.toString(16).padStart(2, '0')).join(' ') || 'nothing';
}
