/**
 * A small, fast, seeded pseudo-random generator: xoshiro128** (Blackman and Vigna, 2018) with
 * its state filled by splitmix32. 32-bit integer arithmetic only (Math.imul), so the stream is
 * identical on every platform for a given seed; that makes a simulation reproducible.
 */
export interface Random {
  /** A uniform draw in [0, 1), 32 bits of resolution. */
  uniform(): number;
  /** An exponential draw with the given rate (mean 1/rate); Infinity when the rate is 0. */
  exponential(rate: number): number;
  /** A uniform integer in [0, n). */
  integer(n: number): number;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * A generator seeded from `seed` (any finite number; its low 32 bits and, for seeds above
 * 2^32, the high bits are mixed in) and an optional `stream` (e.g. the trial index), so that
 * trial k of seed S always draws the same numbers, independently of other trials.
 */
export function createRandom(seed: number, stream = 0): Random {
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  const mix = splitmix32(
    (seed >>> 0) ^ Math.imul(stream + 1, 0x27d4eb2d) ^ Math.imul(hi, 0x165667b1),
  );
  let a = mix();
  let b = mix();
  let c = mix();
  let d = mix();
  if ((a | b | c | d) === 0) a = 1; // the all-zero state is the one fixed point of xoshiro
  const next = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  const uniform = (): number => next() / 4294967296;
  return {
    uniform,
    exponential: (rate) => (rate <= 0 ? Infinity : -Math.log(1 - uniform()) / rate),
    integer: (n) => Math.min(n - 1, Math.floor(uniform() * n)),
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
