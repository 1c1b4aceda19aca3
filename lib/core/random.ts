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

/**
 * A 32-bit seed derived from a run's seed and a path of integers: the shuffle of epoch e is
 * `deriveSeed(seed, e)`, the dropout masks of step s (piece p) `deriveSeed(seed, e, s, p)`,
 * and the initialisers of block b, layer i `deriveSeed(deriveSeed(seed, b), i)`. So any point
 * of a run can be recomputed without replaying it. (A weak mix: a part equal to the running
 * value gives 0, e.g. `deriveSeed(1, 1)`; the consumers here treat 0 as a seed like any other.)
 */
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
