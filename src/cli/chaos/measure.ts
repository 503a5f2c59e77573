import type { Event } from '../../control/model/index.ts';
import type { FaultKind } from './fault-kinds.ts';
import { applicationFaults } from './fault-kinds.ts';

/** What the campaign knew when it injected a fault, and what it did around it. */
export interface Injection {
  readonly index: number;
  readonly kind: FaultKind;
  readonly victimRank: number;
  readonly victimNodeId: string | null;
  readonly victimNode: string | null;
  readonly injectedAtMs: number;
  /** The job's attempt and restarts just before the fault. */
  readonly attemptBefore: number;
  /** Events with a higher id happened after the fault. */
  readonly lastEventIdBefore: number;
  /** The end of this fault's window: the job ran again, or the campaign gave up waiting. */
  readonly windowEndMs: number;
  /** No restart expected (control-plane-kill, straggler) or none happened: when rank 0 trained a newer step, by the harness's clock. */
  readonly trainingAgainAtMs: number | null;
  readonly timedOut: boolean;
  /** The newest step committed at L2 or L3 by the attempt that was hit, before the fault. */
  readonly newestSurvivingStep: number | null;
  /** corrupt-shard: the shard whose bytes were flipped. */
  readonly corrupted: {
    readonly file: string;
    readonly step: number;
    readonly rank: number;
  } | null;
  /** corrupt-shard: whether the rank's log of the next attempt names the file as rejected. */
  readonly corruptionRejectedInLog: boolean | null;
  /** Nodes the campaign repaired (relaunched and/or uncordoned) after this fault. */
  readonly repairs: readonly string[];
  readonly note: string | null;
}

/** One fault, measured from the event log. */
export interface FaultMeasurement {
  readonly index: number;
  readonly kind: FaultKind;
  readonly victimRank: number;
  readonly victimNode: string | null;
  readonly detected: boolean;
  readonly detectionSeconds: number | null;
  readonly cause: string | null;
  readonly classification: string | null;
  readonly blamed: readonly string[];
  readonly cordoned: readonly string[];
  /** Cordons of nodes other than the victim's (every cordon, for an application fault). */
  readonly healthyCordoned: readonly string[];
  readonly sparesTaken: number;
  readonly restarts: number;
  readonly recoverySeconds: number | null;
  /** `event-log` (job-resumed of a new attempt) or `rank-log` (training went on in place). */
  readonly recoveryFrom: 'event-log' | 'rank-log' | null;
  readonly restoredStep: number | null;
  readonly restoredLevels: Readonly<Record<string, number>>;
  readonly stragglerEvents: number;
  readonly stragglerNamedVictim: boolean;
  readonly corruptionCaught: boolean | null;
  readonly repairs: readonly string[];
  readonly timedOut: boolean;
  /** What the campaign did (the pids signalled, the file corrupted). */
  readonly note: string | null;
  readonly violations: readonly string[];
}

function atMs(e: Event): number {
  return Date.parse(e.at.endsWith('Z') ? e.at : `${e.at}Z`);
}

/** What a fault of each kind must be classified as; null where no fault should be detected. */
export function expectedClassification(kind: FaultKind): 'application' | 'node' | null {
  switch (kind) {
    case 'rank-kill':
    case 'corrupt-shard':
      return 'application';
    case 'node-kill':
    case 'hang':
    case 'partition':
      return 'node';
    case 'control-plane-kill':
    case 'straggler':
      return null;
    default:
      return kind satisfies never;
  }
}

/**
 * Measures one fault from the job's events inside its window (after `lastEventIdBefore`, up
 * to `windowEndMs`), with the node names by id. Checks the invariants a fault of its kind must
 * keep and lists every one broken.
 */
export function measureFault(
  injection: Injection,
  events: readonly Event[],
  nodeNames: ReadonlyMap<string, string>,
): FaultMeasurement {
  const inWindow = events.filter(
    (e) => e.id > injection.lastEventIdBefore && atMs(e) <= injection.windowEndMs + 1000,
  );
  const name = (id: string | undefined): string =>
    id === undefined ? '?' : (nodeNames.get(id) ?? id);
  const fault = inWindow.find(
    (e): e is Extract<Event, { kind: 'fault-detected' }> => e.kind === 'fault-detected',
  );
  const cordons = inWindow.filter(
    (e): e is Extract<Event, { kind: 'node-cordoned' }> =>
      e.kind === 'node-cordoned' && e.data.by !== 'user',
  );
  const cordoned = cordons.map((e) => name(e.nodeId));
  const application = applicationFaults.has(injection.kind);
  const expected = expectedClassification(injection.kind);
  const healthyCordoned = cordons
    .filter(
      (e) => application || expected === null || e.nodeId !== (injection.victimNodeId ?? undefined),
    )
    .map((e) => name(e.nodeId));
  const resumed = inWindow.find(
    (e) => e.kind === 'job-resumed' && (e.attempt ?? 0) > injection.attemptBefore,
  );
  const restored = inWindow.filter(
    (e): e is Extract<Event, { kind: 'job-restored' }> =>
      e.kind === 'job-restored' && (e.attempt ?? 0) > injection.attemptBefore,
  );
  const levels: Record<string, number> = {};
  for (const e of restored) levels[e.data.level] = (levels[e.data.level] ?? 0) + 1;
  const restoredStep = restored.length === 0 ? null : Math.min(...restored.map((e) => e.data.step));
  const stragglers = inWindow.filter(
    (e): e is Extract<Event, { kind: 'straggler' }> => e.kind === 'straggler',
  );
  let recoverySeconds: number | null = null;
  let recoveryFrom: FaultMeasurement['recoveryFrom'] = null;
  if (resumed !== undefined) {
    recoverySeconds = (atMs(resumed) - injection.injectedAtMs) / 1000;
    recoveryFrom = 'event-log';
  } else if (
    injection.trainingAgainAtMs !== null &&
    injection.kind !== 'straggler' &&
    injection.kind !== 'control-plane-kill'
  ) {
    // A throttled rank never stops, and training goes on while the control plane restarts
    // (its note says how far): neither window is a recovery, nor counted as one.
    recoverySeconds = (injection.trainingAgainAtMs - injection.injectedAtMs) / 1000;
    recoveryFrom = 'rank-log';
  }
  let corruptionCaught: boolean | null = null;
  if (injection.corrupted !== null) {
    const c = injection.corrupted;
    corruptionCaught = !restored.some(
      (e) => e.rank === c.rank && e.data.level === 'L1' && e.data.step === c.step,
    );
  }
  const blamed = (fault?.data.blame ?? []).filter((b) => b.blamed).map((b) => b.node);
  const violations: string[] = [];
  if (injection.timedOut) violations.push('the job did not run again within the wait');
  if (expected !== null && fault === undefined) violations.push('no fault was detected');
  // The control plane's own crash is no fault of the job: training must go on through it.
  if (injection.kind === 'control-plane-kill' && fault !== undefined)
    violations.push(
      `the control-plane restart was taken for a fault of the job: ${fault.data.message ?? fault.data.cause}`,
    );
  // A hang stops every rank in its collective: when the hung rank's reports do not single it
  // out, `unknown` (restart in place, no cordon) is honest; blaming another node is not.
  const accepted =
    injection.kind === 'hang' ? ['node', 'unknown'] : expected === null ? [] : [expected];
  if (
    expected !== null &&
    fault !== undefined &&
    !accepted.includes(fault.data.classification ?? '')
  )
    violations.push(
      `classified ${fault.data.classification ?? 'without a class'}, expected ${expected}`,
    );
  if (
    (injection.kind === 'node-kill' || (injection.kind === 'hang' && blamed.length > 0)) &&
    fault !== undefined &&
    injection.victimNode !== null &&
    (!blamed.includes(injection.victimNode) || blamed.length > 1)
  )
    violations.push(
      `blamed ${blamed.join(', ') || 'no node'}, expected only the victim ${injection.victimNode}`,
    );
  if (healthyCordoned.length > 0)
    violations.push(
      `healthy node${healthyCordoned.length === 1 ? '' : 's'} cordoned: ${healthyCordoned.join(', ')}`,
    );
  if (corruptionCaught === false) violations.push('the corrupted shard was loaded');
  if (
    restoredStep !== null &&
    injection.newestSurvivingStep !== null &&
    restoredStep < injection.newestSurvivingStep
  )
    violations.push(
      `restored step ${restoredStep}, older than step ${injection.newestSurvivingStep} committed at L2/L3 before the fault`,
    );
  return {
    index: injection.index,
    kind: injection.kind,
    victimRank: injection.victimRank,
    victimNode: injection.victimNode,
    detected: fault !== undefined,
    detectionSeconds: fault === undefined ? null : (atMs(fault) - injection.injectedAtMs) / 1000,
    cause: fault?.data.cause ?? null,
    classification: fault?.data.classification ?? null,
    blamed,
    cordoned,
    healthyCordoned,
    sparesTaken: inWindow.filter((e) => e.kind === 'spare-taken').length,
    restarts: inWindow.filter((e) => e.kind === 'job-restarting').length,
    recoverySeconds,
    recoveryFrom,
    restoredStep,
    restoredLevels: levels,
    stragglerEvents: stragglers.length,
    stragglerNamedVictim: stragglers.some((e) => e.data.rank === injection.victimRank),
    corruptionCaught,
    repairs: injection.repairs,
    timedOut: injection.timedOut,
    note: injection.note,
    violations,
  };
}
