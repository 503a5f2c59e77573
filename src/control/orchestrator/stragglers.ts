/** When a rank counts as a straggler (the job spec's `faults.straggler`). */
export interface StragglerPolicy {
  /** A rank is slow when its median step time is at least this many times the gang's. */
  readonly slowdown: number;
  /** The window, in steps, over which a rank must be slow (or fast again) to change state. */
  readonly windowSteps: number;
}

/** One progress report of one rank, as the detector takes it. */
export interface StepSample {
  readonly rank: number;
  readonly step: number;
  /** When the control plane received it (epoch ms): step times are derived from it if absent. */
  readonly atMs: number;
  /** The rank's own measure of its step time, when it reported one. */
  readonly stepTimeS?: number | null;
}

/** A rank found persistently slower than the rest of its gang, with the evidence. */
export interface StragglerFinding {
  readonly rank: number;
  /** The rank's median step time over the window. */
  readonly stepTimeS: number;
  /** The median, over the other ranks, of their own window medians. */
  readonly gangMedianS: number;
  /** `stepTimeS / gangMedianS`. */
  readonly ratio: number;
  readonly windowSteps: number;
  /** The first and last step of the window the finding rests on. */
  readonly steps: readonly [number, number];
  /** How many step-time samples the window held. */
  readonly samples: number;
}

/**
 * The fewest samples a window needs. Progress is coalesced on its way (the agent relays at
 * most one report per rank per 250 ms), so a window of fast steps may hold only a few samples:
 * it then reaches further back, to this many, so that one odd sample never decides alone.
 */
const MIN_SAMPLES = 5;

/**
 * How often the ranks' medians are sorted again for the reference (ms of report time). Every
 * report needs the median of the other ranks; sorting a large gang's medians on every report
 * (thousands a second at 1,000 ranks) would be the control plane's hottest loop, and a
 * reference a second old is as good.
 */
const REFERENCE_REFRESH_MS = 1000;

interface Sample {
  readonly step: number;
  readonly stepTimeS: number;
}

interface RankState {
  /** Samples in step order, trimmed to the window (and MIN_SAMPLES). */
  readonly samples: Sample[];
  /** The last report seen (for deriving step times), whether or not it made a sample. */
  last: { step: number; atMs: number } | null;
  /** The first step observed: a window is only judged once the rank's history covers it. */
  firstStep: number;
  /** The rank's window median, when its window is full; the others' reference. */
  medianS: number | null;
  straggling: boolean;
  /** The step from which the current state may next change: a whole new window after a flip. */
  sinceStep: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Finds stragglers in one attempt of one gang from its ranks' step times. Each rank's step
 * time is its median over the last `windowSteps` steps; it is compared with the median of the
 * other ranks' medians (not of the whole gang, so that in a gang of 2 the slow rank does not
 * pull its own reference up). A rank whose median is `slowdown` times that reference raises
 * one finding; it raises another only after a whole window back under the threshold and then
 * a whole window over it again. A blip (a few slow steps) does not move a median.
 *
 * Step times come from the ranks (`stepTimeS`) when they report them, else from the time
 * between two consecutive reports divided by the steps they advanced.
 */
export class StragglerDetector {
  readonly #policy: StragglerPolicy;
  readonly #ranks = new Map<number, RankState>();
  /** Every rank's median at the last refresh, sorted, and each rank's index in it. */
  #sorted: number[] = [];
  readonly #indexOf = new Map<number, number>();
  #sortedAtMs = Number.NEGATIVE_INFINITY;
  /** Ranks with a median now, to refresh at once when one joins. */
  #withMedian = 0;

  constructor(policy: StragglerPolicy) {
    this.#policy = policy;
  }

  /** Ranks currently straggling. */
  get straggling(): number[] {
    return [...this.#ranks].filter(([, s]) => s.straggling).map(([rank]) => rank);
  }

  /** Takes one report; returns a finding when it makes its rank a straggler anew. */
  observe(sample: StepSample): StragglerFinding | null {
    let state = this.#ranks.get(sample.rank);
    if (state === undefined) {
      state = {
        samples: [],
        last: null,
        firstStep: sample.step,
        medianS: null,
        straggling: false,
        sinceStep: sample.step,
      };
      this.#ranks.set(sample.rank, state);
    }
    const last = state.last;
    // A report of a step already seen (a repeat, or one overtaken on its way) says nothing new.
    if (last !== null && sample.step <= last.step) return null;
    state.last = { step: sample.step, atMs: sample.atMs };
    let stepTimeS: number | null = null;
    if (
      typeof sample.stepTimeS === 'number' &&
      Number.isFinite(sample.stepTimeS) &&
      sample.stepTimeS >= 0
    )
      stepTimeS = sample.stepTimeS;
    else if (last !== null && sample.atMs >= last.atMs)
      stepTimeS = (sample.atMs - last.atMs) / 1000 / (sample.step - last.step);
    if (stepTimeS === null) return null;
    state.samples.push({ step: sample.step, stepTimeS });
    return this.#judge(sample.rank, state, sample.atMs);
  }

  /** The median of the other ranks' medians, from a sort at most REFERENCE_REFRESH_MS old. */
  #reference(rank: number, atMs: number): number | null {
    if (
      this.#withMedian !== this.#sorted.length ||
      atMs - this.#sortedAtMs >= REFERENCE_REFRESH_MS ||
      atMs < this.#sortedAtMs
    ) {
      const entries = [...this.#ranks]
        .filter((e): e is [number, RankState & { medianS: number }] => e[1].medianS !== null)
        .sort((a, b) => a[1].medianS - b[1].medianS);
      this.#sorted = entries.map(([, st]) => st.medianS);
      this.#indexOf.clear();
      entries.forEach(([r], i) => this.#indexOf.set(r, i));
      this.#sortedAtMs = atMs;
    }
    // The sorted medians without this rank's own: position i of what remains.
    const own = this.#indexOf.get(rank);
    const n = own === undefined ? this.#sorted.length : this.#sorted.length - 1;
    if (n === 0) return null;
    const at = (i: number): number => this.#sorted[own !== undefined && i >= own ? i + 1 : i]!;
    const mid = n >> 1;
    return n % 2 === 1 ? at(mid) : (at(mid - 1) + at(mid)) / 2;
  }

  #judge(rank: number, state: RankState, atMs: number): StragglerFinding | null {
    const { windowSteps, slowdown } = this.#policy;
    const samples = state.samples;
    const latest = samples[samples.length - 1]!.step;
    const windowStart = latest - windowSteps + 1;
    while (samples.length > MIN_SAMPLES && samples[1]!.step <= windowStart) samples.shift();
    // The window: the samples of the last `windowSteps` steps, or the last MIN_SAMPLES ones.
    const firstInWindow = samples.findIndex((s) => s.step >= windowStart);
    const window = samples.slice(
      Math.max(0, Math.min(firstInWindow, samples.length - MIN_SAMPLES)),
    );
    const windowFrom = window[0]!.step;
    const full =
      window.length >= MIN_SAMPLES &&
      state.firstStep <= windowStart &&
      windowFrom >= state.sinceStep;
    const hadMedian = state.medianS !== null;
    state.medianS = window.length >= MIN_SAMPLES ? median(window.map((s) => s.stepTimeS)) : null;
    if (!hadMedian && state.medianS !== null) this.#withMedian += 1;
    else if (hadMedian && state.medianS === null) this.#withMedian -= 1;
    if (!full || state.medianS === null) return null;
    const gangMedianS = this.#reference(rank, atMs);
    if (gangMedianS === null || gangMedianS <= 0) return null;
    const ratio = state.medianS / gangMedianS;
    const slow = ratio >= slowdown;
    if (slow === state.straggling) return null;
    state.straggling = slow;
    state.sinceStep = latest + 1;
    if (!slow) return null;
    return {
      rank,
      stepTimeS: state.medianS,
      gangMedianS,
      ratio,
      windowSteps,
      steps: [windowFrom, latest],
      samples: window.length,
    };
  }
}
