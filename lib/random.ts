/**
 * A small seeded generator for everything the project shuffles or samples outside tfjs
 * (epoch order, example picks). tfjs ops take their own integer seeds derived from it.
 */

/** mulberry32: 32-bit state, period 2^32, plenty for shuffling 60k indices. Returns [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed for one (run seed, epoch) pair, so each epoch's order is reproducible on its own. */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = seed >>> 0;
  for (const p of parts) h = Math.imul(h ^ (p >>> 0), 0x9e3779b1) >>> 0;
  return h;
}

/** Fisher–Yates shuffle of 0..n-1 in a fresh Int32Array. */
export function permutation(n: number, random: () => number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}
