/**
 * Which checkpoints go to L3: a pure function of the step and the job's settings, so that every
 * node's daemon (a spare or a restarted one included) and the Python client's local-directory
 * mode pick the same steps, and every rank of a picked step reaches L3. The contract is
 * docs/checkpoint-format.md, "L3 cadence"; python/cube/cadence.py implements the same rule.
 */

/** The job's checkpoint settings the cadence depends on. */
export interface L3Cadence {
  /** Every k-th checkpoint also goes to L3 (the job spec's `checkpoint.l3Every`). */
  readonly l3Every: number;
  /**
   * The job's checkpoint interval in steps (`checkpoint.everySteps`, CUBE_CKPT_EVERY); absent
   * or null when unknown, and then `l3Every` counts steps instead of checkpoints.
   */
  readonly everySteps?: number | null;
}

/** The distance in steps between two L3 checkpoints: `l3Every × everySteps` (or `l3Every`). */
export function l3PeriodSteps(cadence: L3Cadence): number {
  return Math.max(1, cadence.l3Every) * Math.max(1, cadence.everySteps ?? 1);
}

/**
 * True when the checkpoint of `step` goes to L3: `step` is a multiple of the L3 period. It does
 * not depend on how many checkpoints a daemon saw, so a daemon that counts from zero after a
 * restart still agrees with the others.
 */
export function persistsToL3(step: number, cadence: L3Cadence): boolean {
  return step % l3PeriodSteps(cadence) === 0;
}
