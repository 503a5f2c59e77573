/**
 * mulberry32 (Tommy Ettinger's 32-bit generator): small, well known and fast enough for a
 * fault schedule. Returns a function giving floats in [0, 1); the same seed gives the same
 * sequence on every platform, since it uses only 32-bit integer arithmetic.
 */
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

/** An exponential draw with the given mean (inverse transform of a uniform draw). */
export function exponential(random: () => number, mean: number): number {
  // 1 - u is in (0, 1]: the log never sees 0.
  return -Math.log(1 - random()) * mean;
}
