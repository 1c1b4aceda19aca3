import type { FashionMnistSplit } from '../lib/core/fashionMnist';
/** Helpers the tests share for writing fixture files (no tests here). */

/** An IDX file: 00 00 <type> <ndims>, big-endian dims, then the data (type 0x08 = unsigned bytes). */
export function idxBytes(dims: number[], data: Uint8Array, typeByte = 0x08): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = typeByte;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

/**
 * `count` 28×28 images where label k is a bright band across rows 2k..2k+2 on black: easy
 * to tell apart, so a few steps of a live network visibly lower the loss. `offset` varies
 * the label order (the test split uses another than the training split).
 */
export function bandSplit(count: number, offset = 0): FashionMnistSplit {
  const images = new Uint8Array(count * 784);
  const labels = Uint8Array.from({ length: count }, (_, i) => (i * 7 + offset) % 10);
  labels.forEach((k, i) => images.fill(255, i * 784 + 2 * k * 28, i * 784 + (2 * k + 3) * 28));
  return { images, labels, count, height: 28, width: 28 };
}
