// How many cases each property runs, and with which seed. `npm test` runs a small fixed number
// of cases with a fixed seed, so CI is reproducible (scripts/run-tests.mjs clears the variables
// below); `npm run fuzz` (run-tests --fuzz) sets CUBE_FUZZ_RUNS, 20000 unless given, and a fresh
// seed unless CUBE_FUZZ_SEED is given, to search much longer. fast-check prints the seed and the
// shrunk counterexample of a failure: replay it with
// `CUBE_FUZZ_SEED=<seed> node scripts/run-tests.mjs --fuzz test/fuzz/<file>`.
import type { Parameters } from 'fast-check';

const runsFromEnv = Number.parseInt(process.env.CUBE_FUZZ_RUNS ?? '', 10);
const seedFromEnv = Number.parseInt(process.env.CUBE_FUZZ_SEED ?? '', 10);

/** True under `npm run fuzz` (CUBE_FUZZ_RUNS set): the long, randomly seeded search. */
export const longFuzz = Number.isSafeInteger(runsFromEnv) && runsFromEnv > 0;

/** The seed of this run: fixed in `npm test`, fresh (or CUBE_FUZZ_SEED) under `npm run fuzz`. */
export const fuzzSeed = Number.isSafeInteger(seedFromEnv)
  ? seedFromEnv
  : longFuzz
    ? Date.now() % 2 ** 31
    : 20261206;

/**
 * fast-check parameters for a property that runs `ciRuns` cases in `npm test`; under
 * `npm run fuzz` it runs CUBE_FUZZ_RUNS scaled by `weight` (expensive properties, such as one
 * HTTP request or one file per case, take a fraction).
 */
export function fuzzParams<T>(ciRuns: number, weight = 1): Parameters<T> {
  const numRuns = longFuzz ? Math.max(ciRuns, Math.round(runsFromEnv * weight)) : ciRuns;
  return { numRuns, seed: fuzzSeed, endOnFailure: false, verbose: 1 };
}

/** Rejects with a plain Error when `promise` takes longer than `ms`: a hang is a failure. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
