import { CubeError } from '../../core/index.ts';
import type { FaultKind } from './fault-kinds.ts';
import { exponential, mulberry32 } from './prng.ts';

/** One planned fault: its kind, its delay after the job last ran again, and its victim rank. */
export interface PlannedFault {
  readonly index: number;
  readonly kind: FaultKind;
  /** Seconds after the job is running again (or first running) before this fault is injected. */
  readonly delaySeconds: number;
  /** The rank whose process (or node) is the victim; unused by control-plane-kill. */
  readonly victimRank: number;
}

export interface CampaignPlanOptions {
  readonly seed: number;
  readonly kinds: readonly FaultKind[];
  readonly meanIntervalSeconds: number;
  /**
   * Training time the faults are spread over: the delays of the planned faults add up to at
   * most this. Recoveries come on top (the clock of the next fault starts when the job runs
   * again), so which faults a campaign injects depends on its seed and options alone.
   */
  readonly durationSeconds: number;
  readonly worldSize: number;
}

/**
 * The fault schedule of a campaign, a function of its options alone: kinds drawn uniformly
 * from `kinds`, exponential inter-arrival times with the mean interval, victims uniform over
 * the ranks. Delays count from the moment the job runs again after the previous fault, so
 * each fault is measured on its own.
 */
export function planCampaign(options: CampaignPlanOptions): PlannedFault[] {
  if (options.kinds.length === 0)
    throw new CubeError('BAD_FLAG', 'a chaos campaign needs at least one fault kind', {
      where: { field: '--faults' },
    });
  if (!(options.meanIntervalSeconds > 0))
    throw new CubeError('BAD_FLAG', 'the mean interval between faults must be positive', {
      where: { field: '--mean-interval-s' },
    });
  const random = mulberry32(options.seed);
  const faults: PlannedFault[] = [];
  let total = 0;
  // Each draw takes three numbers in a fixed order: kinds and victims never shift the times.
  for (;;) {
    const delaySeconds = exponential(random, options.meanIntervalSeconds);
    const kind = options.kinds[Math.floor(random() * options.kinds.length)] as FaultKind;
    const victimRank = Math.floor(random() * options.worldSize);
    total += delaySeconds;
    if (total > options.durationSeconds) return faults;
    faults.push({ index: faults.length, kind, delaySeconds, victimRank });
  }
  return faults;
}
