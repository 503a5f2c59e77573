/**
 * Finding a level that stopped committing: steps keep arriving at it (records, shards) but none
 * gets its manifest, so its newest complete checkpoint falls ever further behind. Issue 14 saw L3
 * fill with uncommitted steps for 300 steps while verify said ok: a whole-cluster loss would
 * have rolled back that far.
 */
import { isCommitted, type StepStatus } from './scan.ts';
import type { Level } from './schemas.ts';

/** When a level counts as stalled; see docs/checkpoint-format.md, "Stalled levels". */
export interface StallLimits {
  /** More pending steps than this above the newest committed one: stalled (default 2). */
  readonly maxPendingSteps?: number;
  /**
   * Stalled when a pending step exists and the level's newest committed step lags the newest
   * committed step of another level by more than this many of its own intervals (default 2).
   */
  readonly maxLagIntervals?: number;
}

/** A level that stopped committing, with the numbers that show it. */
export interface StalledLevel {
  readonly level: Level;
  /** The level's newest committed step, or null when it has none. */
  readonly newestCommitted: number | null;
  /** Steps newer than that with shards at this level but no manifest, ascending. */
  readonly pendingSteps: readonly number[];
  /** The newest step committed at any other level, or null. */
  readonly newestElsewhere: number | null;
  /** `newestElsewhere - newestCommitted`, when both are known. */
  readonly lagSteps: number | null;
  /** The smallest distance between two steps held at this level (its cadence), when known. */
  readonly intervalSteps: number | null;
  /** The finding in one line, numbers included. */
  readonly message: string;
}

export const defaultStallLimits = { maxPendingSteps: 2, maxLagIntervals: 2 } as const;

/** A step at this level that was started but is not a checkpoint (yet). */
function isPending(status: StepStatus): boolean {
  // A partial L3 manifest cannot happen by commit (L3 commits list every rank); count it too.
  return status.state === 'uncommitted' || (status.level === 'L3' && status.state === 'partial');
}

function smallestGap(steps: readonly number[]): number | null {
  let gap: number | null = null;
  for (let i = 1; i < steps.length; i++) {
    const d = (steps[i] ?? 0) - (steps[i - 1] ?? 0);
    if (d > 0 && (gap === null || d < gap)) gap = d;
  }
  return gap;
}

function newestOf(statuses: readonly StepStatus[]): number | null {
  const steps = statuses.map((s) => s.step);
  return steps.length === 0 ? null : Math.max(...steps);
}

/**
 * The levels among `statuses` (one job's steps at any levels, as `scanJob` gives them) that have
 * stopped committing: more than `maxPendingSteps` pending steps above their newest committed
 * step, or a pending step while their newest committed step lags another level's by more than
 * `maxLagIntervals` of their own intervals. A level in good health has at most the step being
 * written in flight, and its newest checkpoint is at most one interval behind.
 */
export function findStalledLevels(
  statuses: readonly StepStatus[],
  limits: StallLimits = {},
): StalledLevel[] {
  const maxPending = limits.maxPendingSteps ?? defaultStallLimits.maxPendingSteps;
  const maxLag = limits.maxLagIntervals ?? defaultStallLimits.maxLagIntervals;
  const found: StalledLevel[] = [];
  const present = [...new Set(statuses.map((s) => s.level))].sort();
  for (const level of present) {
    const here = statuses.filter((s) => s.level === level);
    const newestCommitted = newestOf(here.filter(isCommitted));
    const pendingSteps = here
      .filter((s) => isPending(s) && (newestCommitted === null || s.step > newestCommitted))
      .map((s) => s.step)
      .sort((a, b) => a - b);
    if (pendingSteps.length === 0) continue;
    const newestElsewhere = newestOf(statuses.filter((s) => s.level !== level && isCommitted(s)));
    const intervalSteps = smallestGap([...new Set(here.map((s) => s.step))].sort((a, b) => a - b));
    const lagSteps =
      newestCommitted === null || newestElsewhere === null
        ? null
        : newestElsewhere - newestCommitted;
    const tooMany = pendingSteps.length > maxPending;
    const tooFar = lagSteps !== null && intervalSteps !== null && lagSteps > maxLag * intervalSteps;
    if (!tooMany && !tooFar) continue;
    const newest =
      newestCommitted === null ? 'no committed step' : `newest committed step ${newestCommitted}`;
    const pending = `${pendingSteps.length} newer step${pendingSteps.length === 1 ? '' : 's'} never committed (${pendingSteps[0]}${pendingSteps.length > 1 ? `..${pendingSteps.at(-1)}` : ''})`;
    const lag =
      lagSteps === null || newestElsewhere === null
        ? ''
        : `; ${lagSteps} steps behind step ${newestElsewhere} at another level${intervalSteps === null ? '' : ` (interval ${intervalSteps}, allowed ${maxLag * intervalSteps})`}`;
    found.push({
      level,
      newestCommitted,
      pendingSteps,
      newestElsewhere,
      lagSteps,
      intervalSteps,
      message: `${level} stalled: ${newest}, ${pending}${lag}`,
    });
  }
  return found;
}
