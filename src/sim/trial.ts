import type { DetectionKind, FailureClass, FailureModel } from './failure-model.ts';
import { replicaPeer, type SimJob } from './job.ts';
import { unitsOf, type SimPolicy } from './policy.ts';
import { createRandom, type Random } from './prng.ts';

/**
 * One trial: a discrete-event simulation of a training job over a horizon. It jumps from event
 * to event (a failure, a snapshot boundary, the end of a stall, of a background write, of a
 * recovery); between events progress is linear, so nothing is ever simulated step by step.
 *
 * Failures are one superposed Poisson process: the next failure comes after an exponential
 * draw from the total rate of every class over every unit; then the class is drawn by its share
 * of the rate and the place (GPU, host, switch) uniformly among that class's units.
 */

/** Categories of wall-clock time that did not advance training. */
export interface LostSeconds {
  /** From the fault until it is noticed. */
  readonly detection: number;
  /** Cordon, spare swap, gang re-initialization. */
  readonly restart: number;
  /** Waiting for a person or for repaired nodes when no spare is left. */
  readonly waiting: number;
  /** Reading the checkpoint back. */
  readonly restore: number;
  /** Training redone: progress lost between the restored checkpoint and the fault. */
  readonly recompute: number;
  /** Blocking snapshot copies and synchronous writes (and the checkpoint before a planned stop). */
  readonly checkpointStall: number;
  /** Training slowed by background (L2, L3) writes. */
  readonly checkpointInterference: number;
}

/** Which level a restore read from; `none` restarts from step 0. */
export type RestoreLevel = 'L1' | 'L2' | 'L3' | 'none';

/** A failure placed by hand (tests, what-if questions). */
export interface InjectedFailure {
  readonly atS: number;
  readonly cause: string;
  /** The nodes it takes down (indices into the job's nodes); empty or absent: none (software). */
  readonly nodes?: readonly number[];
  readonly detection?: DetectionKind;
  readonly repairHours?: number;
  /** For `silent`: seconds until the corruption is found (default: drawn as the model says). */
  readonly detectAfterS?: number;
}

export interface TrialOptions {
  /** Seconds simulated for the main statistics. */
  readonly horizonS: number;
  /**
   * Seconds simulated in all (at least `horizonS`): the run goes on past the horizon only to
   * observe when the first fault and the first human intervention come (pNoFault, pNoHuman).
   */
  readonly extendedHorizonS?: number;
  readonly seed: number;
  /** The trial's index: its own random stream. */
  readonly stream?: number;
  /** Draw failures from the model (default true). */
  readonly randomFailures?: boolean;
  readonly injected?: readonly InjectedFailure[];
  /** Points of the progress curve over [0, horizonS] (default 0: none). */
  readonly curvePoints?: number;
  /** Record every interruption (tests, debugging). */
  readonly trace?: boolean;
}

/** One interruption as the trace records it. */
export interface TraceEntry {
  readonly atS: number;
  readonly cause: string;
  readonly nodes: readonly number[];
  readonly detectedAtS: number;
  readonly restoreLevel: RestoreLevel;
  /** Progress (training seconds) the job resumes from. */
  readonly restoredProgressS: number;
  readonly resumeAtS: number;
  readonly human: boolean;
}

export interface TrialResult {
  /** Training seconds completed at the horizon (what counts: lost work excluded). */
  readonly progressS: number;
  readonly steps: number;
  /** progressS / horizonS. */
  readonly goodput: number;
  readonly interruptions: number;
  readonly unplannedInterruptions: number;
  readonly byCause: Readonly<Record<string, number>>;
  readonly humanInterventions: number;
  readonly lost: LostSeconds;
  readonly restores: Readonly<Record<RestoreLevel, number>>;
  /** Checkpoint writes skipped because the previous one of that level was still running. */
  readonly skippedWrites: number;
  readonly longestFaultFreeS: number;
  /** When the first unplanned fault came (Infinity: none within the extended horizon). */
  readonly firstFaultS: number;
  readonly firstHumanS: number;
  /** Progress (training seconds) at `curvePoints` evenly spaced times from 0 to the horizon. */
  readonly curve: Float64Array;
  readonly trace: readonly TraceEntry[];
}

interface Write {
  readonly pos: number;
  readonly end: number;
  readonly slowdown: number;
}

interface Phase {
  readonly cat: 'detection' | 'waiting' | 'restart' | 'restore' | 'checkpointStall';
  readonly end: number;
}

interface Recovery {
  readonly phases: Phase[];
  /** Index of the phase being charged. */
  phase: number;
  readonly resumeAt: number;
  readonly restoreP: number;
  readonly level: RestoreLevel;
  readonly trace: TraceEntry | null;
}

interface PendingSilent {
  readonly detectAt: number;
  readonly corruptP: number;
  readonly node: number;
  readonly cause: string;
  readonly repairHours: number;
}

const eps = 1e-9;

/** The newest entry of an ascending list that is at most `max`, or -1. */
function newestAtMost(list: readonly number[], max: number): number {
  for (let i = list.length - 1; i >= 0; i -= 1) {
    const v = list[i] as number;
    if (v <= max + eps) return v;
  }
  return -1;
}

function truncateAbove(list: number[], max: number): void {
  while (list.length > 0 && (list[list.length - 1] as number) > max + eps) list.pop();
  // Old entries are never needed once far behind the newest; keep the lists short.
  if (list.length > 512) list.splice(0, list.length - 256);
}

/** Runs one trial. Deterministic for (seed, stream). */
export function simulateTrial(
  job: SimJob,
  policy: SimPolicy,
  model: FailureModel,
  options: TrialOptions,
): TrialResult {
  const H = options.horizonS;
  const Hext = Math.max(H, options.extendedHorizonS ?? H);
  // Two streams: failure arrivals and places, and everything else (detection latencies). Every
  // policy compared on the same seed then meets the same failures at the same times.
  const stream = options.stream ?? 0;
  const rng: Random = createRandom(options.seed, 2 * stream);
  const rngOther: Random = createRandom(options.seed, 2 * stream + 1);
  const det = model.detection;
  const I = policy.intervalS;
  const classes = model.classes;

  // Superposed failure process: cumulative rates per second.
  const classRates = classes.map((c) => (c.ratePerUnitHour * unitsOf(job, c.scope)) / 3600);
  const totalRate = options.randomFailures === false ? 0 : classRates.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  classRates.reduce((acc, r) => {
    cumulative.push(acc + r);
    return acc + r;
  }, 0);
  const injected = [...(options.injected ?? [])].sort((a, b) => a.atS - b.atS);
  let injectedNext = 0;

  // Nodes: job slots hold physical nodes; spares and repairs move physical nodes around.
  const physicalCount = job.nodes + policy.spareNodes;
  const slotPhys = new Int32Array(job.nodes);
  for (let s = 0; s < job.nodes; s += 1) slotPhys[s] = s;
  const spares: number[] = [];
  for (let n = job.nodes; n < physicalCount; n += 1) spares.push(n);
  const repairs: { at: number; phys: number }[] = []; // kept sorted by `at`
  const lastFaultAt = new Float64Array(physicalCount).fill(-Infinity);

  // Counters.
  const byCause: Record<string, number> = {};
  for (const c of classes) byCause[c.cause] = 0;
  const lost = {
    detection: 0,
    restart: 0,
    waiting: 0,
    restore: 0,
    recompute: 0,
    checkpointStall: 0,
    checkpointInterference: 0,
  };
  const restores: Record<RestoreLevel, number> = { L1: 0, L2: 0, L3: 0, none: 0 };
  let interruptions = 0;
  let unplanned = 0;
  let humans = 0;
  let skippedWrites = 0;
  let firstFault = Infinity;
  let firstHuman = Infinity;
  let lastFaultT = 0;
  let longestGap = 0;
  const trace: TraceEntry[] = [];

  // Checkpoint history per level: positions (training seconds), ascending.
  const l1Hist: number[] = [];
  const l2Hist: number[] = [];
  const l3Hist: number[] = [];

  // The run's state.
  let t = 0;
  let p = 0;
  let mode = 'run' as 'run' | 'stall' | 'down';
  let nextSnapP = I;
  let stallEnd = 0;
  let pendingSnap = null as { pos: number; l2Due: boolean; l3Due: boolean } | null;
  let l2Write = null as Write | null;
  let l3Write = null as Write | null;
  let recovery = null as Recovery | null;
  const failedSinceResume = new Set<number>();
  /** The newest position a restore may use (below any silent corruption being recovered). */
  let restoreCap = Infinity;
  const tracing = options.trace === true;
  const pendingSilent: PendingSilent[] = [];
  let nextFailT = rng.exponential(totalRate);

  // Curve sampling over [0, H].
  const points = options.curvePoints ?? 0;
  const curve = new Float64Array(points);
  let nextPoint = 0;
  const pointTime = (i: number): number => (points <= 1 ? H : (i * H) / (points - 1));

  // The snapshot of the statistics at H.
  let atH: Omit<TrialResult, 'firstFaultS' | 'firstHumanS' | 'curve' | 'trace'> | null = null;

  const slowFactor = (): number => 1 + (l2Write?.slowdown ?? 0) + (l3Write?.slowdown ?? 0);

  /** Moves time to `to`, accruing progress or lost time in the current mode. */
  const advance = (to: number): void => {
    if (to <= t) return;
    const dt = to - t;
    const rate = mode === 'run' ? 1 / slowFactor() : 0;
    while (nextPoint < points && pointTime(nextPoint) <= to + eps) {
      curve[nextPoint] = p + Math.max(0, pointTime(nextPoint) - t) * rate;
      nextPoint += 1;
    }
    if (mode === 'run') {
      const dp = dt * rate;
      p += dp;
      lost.checkpointInterference += dt - dp;
    } else if (mode === 'stall') {
      lost.checkpointStall += dt;
    } else if (recovery !== null) {
      let from = t;
      while (from < to && recovery.phase < recovery.phases.length) {
        const ph = recovery.phases[recovery.phase] as Phase;
        const until = Math.min(ph.end, to);
        if (until > from) lost[ph.cat] += until - from;
        from = Math.max(from, until);
        if (ph.end <= to) recovery.phase += 1;
        else break;
      }
    }
    t = to;
  };

  const snapshotStats = (): void => {
    const pendingLoss = mode === 'down' && recovery !== null ? p - recovery.restoreP : 0;
    const progressS = p - Math.max(0, pendingLoss);
    atH = {
      progressS,
      steps: Math.floor(progressS / job.stepTimeS + 1e-9),
      goodput: progressS / H,
      interruptions,
      unplannedInterruptions: unplanned,
      byCause: { ...byCause },
      humanInterventions: humans,
      lost: { ...lost, recompute: lost.recompute + Math.max(0, pendingLoss) },
      restores: { ...restores },
      skippedWrites,
      longestFaultFreeS: Math.max(longestGap, H - lastFaultT),
    };
  };

  const takeSpare = (at: number): number | undefined => {
    while (repairs.length > 0 && (repairs[0] as { at: number }).at <= at + eps) {
      spares.push((repairs.shift() as { phys: number }).phys);
    }
    return spares.shift();
  };

  const addRepair = (phys: number, at: number): void => {
    let i = repairs.length;
    while (i > 0 && (repairs[i - 1] as { at: number }).at > at) i -= 1;
    repairs.splice(i, 0, { at, phys });
  };

  const chooseRestore = (
    failed: ReadonlySet<number>,
    maxP: number,
  ): { level: RestoreLevel; pos: number; seconds: number } => {
    let best: { level: RestoreLevel; pos: number; seconds: number } = {
      level: 'none',
      pos: 0,
      seconds: 0,
    };
    const consider = (level: RestoreLevel, pos: number, seconds: number): void => {
      // Newer wins; at the same position the faster (nearer) level wins.
      if (pos < 0) return;
      if (pos > best.pos + eps || (Math.abs(pos - best.pos) <= eps && seconds < best.seconds))
        best = { level, pos, seconds };
    };
    consider('L3', newestAtMost(l3Hist, maxP), policy.l3.restoreS);
    if (policy.l2 !== null && failed.size > 0) {
      let replicasSurvive = true;
      for (const node of failed) {
        const peer = replicaPeer(job, node);
        if (peer === null || failed.has(peer)) {
          replicasSurvive = false;
          break;
        }
      }
      if (replicasSurvive)
        consider(
          'L2',
          newestAtMost(l2Hist, maxP),
          Math.max(policy.l2.restoreS, policy.l1?.restoreS ?? 0),
        );
    }
    if (policy.l1 !== null && failed.size === 0)
      consider('L1', newestAtMost(l1Hist, maxP), policy.l1.restoreS);
    return best;
  };

  const detectionLatency = (kind: DetectionKind): number => {
    switch (kind) {
      case 'crash':
        return det.crashS;
      case 'heartbeat':
        return det.heartbeatTimeoutS;
      case 'hang':
        return det.hangTimeoutS;
      case 'probe':
        return rngOther.uniform() * det.probeIntervalS;
      case 'silent':
        return rngOther.uniform() * det.silentCheckIntervalS;
      case 'planned':
        return 0;
      default:
        return kind satisfies never;
    }
  };

  const countInterruption = (cause: string, planned: boolean): void => {
    interruptions += 1;
    byCause[cause] = (byCause[cause] ?? 0) + 1;
    if (!planned) {
      unplanned += 1;
      if (firstFault === Infinity) firstFault = t;
      if (t <= H) {
        longestGap = Math.max(longestGap, t - lastFaultT);
        lastFaultT = t;
      }
    }
  };

  /** A planned stop: checkpoint where the job stands, restart in place, lose nothing. */
  const plannedStop = (cause: string): void => {
    countInterruption(cause, true);
    if (mode === 'down') return; // already stopped; the maintenance rides along
    l2Write = null;
    l3Write = null;
    pendingSnap = null;
    const ckptS = policy.l1 !== null ? policy.l1.stallS : policy.l3.writeS;
    const restoreS = policy.l1 !== null ? policy.l1.restoreS : policy.l3.restoreS;
    (policy.l1 !== null ? l1Hist : l3Hist).push(p);
    const phases: Phase[] = [
      { cat: 'checkpointStall', end: t + ckptS },
      { cat: 'restart', end: t + ckptS + policy.recovery.restartS },
      { cat: 'restore', end: t + ckptS + policy.recovery.restartS + restoreS },
    ];
    mode = 'down';
    recovery = {
      phases,
      phase: 0,
      resumeAt: (phases[2] as Phase).end,
      restoreP: p,
      level: policy.l1 !== null ? 'L1' : 'L3',
      trace: null,
    };
  };

  /** An unplanned failure (or a silent corruption being found) at time t. */
  const fail = (
    cause: string,
    nodes: readonly number[],
    latencyS: number,
    repairHours: number,
    options: { countsAsRepeat: boolean; maxP?: number },
  ): void => {
    countInterruption(cause, false);
    restoreCap = Math.min(restoreCap, options.maxP ?? Infinity);
    if (mode !== 'down') {
      l2Write = null;
      l3Write = null;
      pendingSnap = null;
    }
    let repeat = false;
    for (const node of nodes) {
      if (failedSinceResume.has(node)) continue;
      failedSinceResume.add(node);
      const phys = slotPhys[node] as number;
      if (options.countsAsRepeat) {
        if (t - (lastFaultAt[phys] as number) <= policy.recovery.repeatWindowS) repeat = true;
        lastFaultAt[phys] = t;
      }
      addRepair(phys, t + repairHours * 3600);
      slotPhys[node] = -1;
    }
    const detectedAt = t + latencyS;
    // Replace every node that lost its physical node (this failure's and earlier ones').
    let missing = 0;
    for (const node of failedSinceResume) {
      if ((slotPhys[node] as number) >= 0) continue;
      const spare = takeSpare(detectedAt);
      if (spare === undefined) missing += 1;
      else slotPhys[node] = spare;
    }
    let waitS = 0;
    let human = false;
    if (missing > 0) {
      human = true;
      // Nodes come back from repair in order; the job waits for the missing-th one.
      const needed = repairs.slice(0, missing);
      const ready = needed.length < missing ? Infinity : (needed[missing - 1] as { at: number }).at;
      waitS = Math.max(policy.recovery.humanResponseS, ready - detectedAt);
      for (const node of failedSinceResume)
        if ((slotPhys[node] as number) < 0)
          slotPhys[node] = (repairs.shift() as { phys: number }).phys;
    }
    if (repeat) {
      human = true;
      waitS = Math.max(waitS, policy.recovery.humanResponseS);
    }
    if (human) {
      humans += 1;
      if (firstHuman === Infinity) firstHuman = t;
    }
    const replaced = nodes.length > 0 ? policy.recovery.cordonS + policy.recovery.spareSwapS : 0;
    const restore = chooseRestore(failedSinceResume, restoreCap);
    const waitEnd = detectedAt + waitS;
    const restartEnd = waitEnd + replaced + policy.recovery.restartS;
    const resumeAt = restartEnd + restore.seconds;
    const entry: TraceEntry | null = tracing
      ? {
          atS: t,
          cause,
          nodes: [...nodes],
          detectedAtS: detectedAt,
          restoreLevel: restore.level,
          restoredProgressS: restore.pos,
          resumeAtS: resumeAt,
          human,
        }
      : null;
    if (entry !== null) trace.push(entry);
    mode = 'down';
    recovery = {
      phases: [
        { cat: 'detection', end: detectedAt },
        { cat: 'waiting', end: waitEnd },
        { cat: 'restart', end: restartEnd },
        { cat: 'restore', end: resumeAt },
      ],
      phase: 0,
      resumeAt,
      restoreP: Math.min(restore.pos, p),
      level: restore.level,
      trace: entry,
    };
  };

  const placeFailure = (c: FailureClass): number[] => {
    switch (c.scope) {
      case 'gpu':
        return [Math.floor(rng.integer(job.gpus) / job.gpusPerNode)];
      case 'host':
        return [rng.integer(job.nodes)];
      case 'switch': {
        const switchesPerGroup = Math.max(1, job.switchesPerGroup);
        const groups = Math.ceil(job.nodes / job.nodesPerSwitch);
        const group = Math.floor(rng.integer(groups * switchesPerGroup) / switchesPerGroup);
        const first = group * job.nodesPerSwitch;
        const out: number[] = [];
        for (let n = first; n < Math.min(job.nodes, first + job.nodesPerSwitch); n += 1)
          out.push(n);
        return out;
      }
      case 'rank':
      case 'job':
        return [];
      default:
        return c.scope satisfies never;
    }
  };

  const randomFailure = (): void => {
    const u = rng.uniform() * totalRate;
    let k = 0;
    while (k < cumulative.length - 1 && u >= (cumulative[k] as number)) k += 1;
    const c = classes[k] as FailureClass;
    const nodes = placeFailure(c);
    if (c.detection === 'planned') plannedStop(c.cause);
    else if (c.detection === 'silent') {
      // Nothing to corrupt while the job is down.
      if (mode !== 'down')
        pendingSilent.push({
          detectAt: t + detectionLatency('silent'),
          corruptP: p,
          node: nodes[0] ?? 0,
          cause: c.cause,
          repairHours: c.repairHours,
        });
    } else
      fail(c.cause, nodes, detectionLatency(c.detection), c.repairHours, {
        countsAsRepeat: c.scope !== 'switch',
      });
  };

  const startWrite = (level: 'l2' | 'l3', pos: number): void => {
    const spec = level === 'l2' ? policy.l2 : policy.l3;
    if (spec === null) return;
    const hist = level === 'l2' ? l2Hist : l3Hist;
    if (spec.writeS <= 0) {
      hist.push(pos);
      return;
    }
    const current = level === 'l2' ? l2Write : l3Write;
    if (current !== null) {
      skippedWrites += 1;
      return;
    }
    const w: Write = { pos, end: t + spec.writeS, slowdown: spec.slowdown };
    if (level === 'l2') l2Write = w;
    else l3Write = w;
  };

  const completeSnapshot = (): void => {
    const snap = pendingSnap;
    pendingSnap = null;
    mode = 'run';
    if (snap === null) return;
    if (policy.l1 !== null) l1Hist.push(snap.pos);
    if (policy.l3.blocking && snap.l3Due) l3Hist.push(snap.pos);
    if (snap.l2Due) startWrite('l2', snap.pos);
    if (!policy.l3.blocking && snap.l3Due) startWrite('l3', snap.pos);
    nextSnapP = snap.pos + I;
  };

  const resume = (): void => {
    const r = recovery as Recovery;
    lost.recompute += Math.max(0, p - r.restoreP);
    p = r.restoreP;
    restores[r.level] += 1;
    truncateAbove(l1Hist, p);
    truncateAbove(l2Hist, p);
    truncateAbove(l3Hist, p);
    if (failedSinceResume.size > 0) {
      // The replacements hold no L1 copy and no replicas: those levels start again.
      l1Hist.length = 0;
      l2Hist.length = 0;
    }
    failedSinceResume.clear();
    restoreCap = Infinity;
    for (let i = pendingSilent.length - 1; i >= 0; i -= 1)
      if ((pendingSilent[i] as PendingSilent).corruptP >= p - eps) pendingSilent.splice(i, 1);
    recovery = null;
    mode = 'run';
    nextSnapP = (Math.floor(p / I + eps) + 1) * I;
  };

  for (;;) {
    // The next event of each kind.
    const tRun = mode === 'run' ? t + Math.max(0, nextSnapP - p) * slowFactor() : Infinity;
    const tStall = mode === 'stall' ? stallEnd : Infinity;
    const tResume = mode === 'down' && recovery !== null ? recovery.resumeAt : Infinity;
    const tL2 = l2Write?.end ?? Infinity;
    const tL3 = l3Write?.end ?? Infinity;
    const tInjected = injected[injectedNext]?.atS ?? Infinity;
    let tSilent = Infinity;
    let silentIndex = -1;
    pendingSilent.forEach((s, i) => {
      if (s.detectAt < tSilent) {
        tSilent = s.detectAt;
        silentIndex = i;
      }
    });
    const tH = atH === null ? H : Infinity;
    const tn = Math.min(Hext, tH, tL2, tL3, nextFailT, tInjected, tSilent, tResume, tStall, tRun);
    advance(tn);
    if (tn === tH) {
      snapshotStats();
      continue;
    }
    if (tn >= Hext) break;
    if (tn === tL2) {
      l2Hist.push((l2Write as Write).pos);
      l2Write = null;
    } else if (tn === tL3) {
      l3Hist.push((l3Write as Write).pos);
      l3Write = null;
    } else if (tn === nextFailT) {
      randomFailure();
      nextFailT = t + rng.exponential(totalRate);
    } else if (tn === tInjected) {
      const f = injected[injectedNext] as InjectedFailure;
      injectedNext += 1;
      if (f.detection === 'planned') plannedStop(f.cause);
      else if (f.detection === 'silent') {
        if (mode !== 'down')
          pendingSilent.push({
            detectAt: t + (f.detectAfterS ?? detectionLatency('silent')),
            corruptP: p,
            node: f.nodes?.[0] ?? 0,
            cause: f.cause,
            repairHours: f.repairHours ?? 24,
          });
      } else
        fail(
          f.cause,
          f.nodes ?? [],
          detectionLatency(f.detection ?? 'crash'),
          f.repairHours ?? 24,
          {
            countsAsRepeat: true,
          },
        );
    } else if (tn === tSilent) {
      const s = pendingSilent[silentIndex] as PendingSilent;
      pendingSilent.splice(silentIndex, 1);
      // Found by the check now: the detection latency has already passed (training went on).
      fail(s.cause, [s.node], 0, s.repairHours, { countsAsRepeat: true, maxP: s.corruptP });
    } else if (tn === tResume) {
      resume();
    } else if (tn === tStall) {
      completeSnapshot();
    } else if (tn === tRun) {
      p = nextSnapP;
      const k = Math.round(p / I);
      const l2Due = policy.l2 !== null && k % policy.l2.every === 0;
      const l3Due = k % policy.l3.every === 0;
      const stallS =
        (policy.l1?.stallS ?? 0) + (policy.l3.blocking && l3Due ? policy.l3.writeS : 0);
      pendingSnap = { pos: p, l2Due, l3Due };
      if (stallS > 0) {
        mode = 'stall';
        stallEnd = t + stallS;
      } else completeSnapshot();
    }
  }
  if (atH === null) snapshotStats();
  const stats = atH as unknown as Omit<
    TrialResult,
    'firstFaultS' | 'firstHumanS' | 'curve' | 'trace'
  >;
  while (nextPoint < points) {
    curve[nextPoint] = stats.progressS;
    nextPoint += 1;
  }
  return { ...stats, firstFaultS: firstFault, firstHumanS: firstHuman, curve, trace };
}
