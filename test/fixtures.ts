/** Helpers the tests share for writing fixture files (no tests here). */

/** An IDX file: 00 00 <type> <ndims>, big-endian dims, then the data (type 0x08 = unsigned bytes). */
export function idxBytes(dims: number[], data: Uint8Array, typeByte = 0x08): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = typeByte;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}
