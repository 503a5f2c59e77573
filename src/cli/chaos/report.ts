import { faultKinds, type FaultKind } from './fault-kinds.ts';
import type { FaultMeasurement } from './measure.ts';
import { spread, type Spread } from './stats.ts';

/** The faults of one kind, summed up. */
export interface KindSummary {
  readonly kind: FaultKind;
  readonly count: number;
  readonly detected: number;
  readonly classifications: Readonly<Record<string, number>>;
  readonly detectionSeconds: Spread;
  readonly recoverySeconds: Spread;
  readonly restarts: number;
  readonly sparesTaken: number;
  readonly healthyCordons: number;
  readonly stragglerEvents: number;
  readonly repairs: number;
}

/** Whether every loss any attempt logged equals the reference run's, and across attempts. */
export interface ReplayCheck {
  /** Steps compared with the fault-free reference; null when no reference was run. */
  readonly referenceSteps: number | null;
  readonly referenceDifference: { step: number; campaign: string; reference: string } | null;
  /** Steps logged by more than one attempt of the campaign job. */
  readonly crossAttemptSteps: number;
  readonly crossAttemptDifference: { step: number; first: string; other: string } | null;
}

/** The L3 checkpoints the log says were committed and retention kept, verified at the end. */
export interface CheckpointCheck {
  readonly l3Checked: number;
  readonly lost: readonly { step: number; why: string }[];
}

export interface ChaosReport {
  readonly seed: number;
  readonly durationSeconds: number;
  readonly job: { id: string; state: string; restarts: number; lastStep: number | null };
  readonly faults: readonly FaultMeasurement[];
  readonly byKind: readonly KindSummary[];
  readonly recoverySeconds: Spread;
  readonly corruption: { caught: number; injected: number; rejectedInLog: number };
  readonly stragglers: { injected: number; detected: number };
  readonly replay: ReplayCheck;
  readonly checkpoints: CheckpointCheck;
  readonly violations: readonly string[];
  readonly ok: boolean;
}

/** Sums the faults up by kind (kinds without a fault are left out). */
export function summarizeByKind(faults: readonly FaultMeasurement[]): KindSummary[] {
  return faultKinds
    .map((kind) => {
      const of = faults.filter((f) => f.kind === kind);
      const classifications: Record<string, number> = {};
      for (const f of of) {
        const c = f.detected ? (f.classification ?? 'unclassified') : 'none';
        classifications[c] = (classifications[c] ?? 0) + 1;
      }
      const numbers = (pick: (f: FaultMeasurement) => number | null): number[] =>
        of.map(pick).filter((x): x is number => x !== null);
      return {
        kind,
        count: of.length,
        detected: of.filter((f) => f.detected).length,
        classifications,
        detectionSeconds: spread(numbers((f) => f.detectionSeconds)),
        recoverySeconds: spread(numbers((f) => f.recoverySeconds)),
        restarts: of.reduce((n, f) => n + f.restarts, 0),
        sparesTaken: of.reduce((n, f) => n + f.sparesTaken, 0),
        healthyCordons: of.reduce((n, f) => n + f.healthyCordoned.length, 0),
        stragglerEvents: of.reduce((n, f) => n + f.stragglerEvents, 0),
        repairs: of.reduce((n, f) => n + f.repairs.length, 0),
      };
    })
    .filter((s) => s.count > 0);
}

/**
 * Compares losses by step: every attempt's against the others (the first seen is the
 * yardstick) and, when given, against the fault-free reference. Losses are the trainer's
 * `float.hex()` text, so equal text is equal bits.
 */
export function compareLosses(
  attempts: readonly ReadonlyMap<number, string>[],
  reference: ReadonlyMap<number, string> | null,
): ReplayCheck {
  const first = new Map<number, string>();
  let crossAttemptSteps = 0;
  let crossAttemptDifference: ReplayCheck['crossAttemptDifference'] = null;
  const counted = new Set<number>();
  for (const losses of attempts)
    for (const [step, loss] of losses) {
      const seen = first.get(step);
      if (seen === undefined) {
        first.set(step, loss);
        continue;
      }
      if (!counted.has(step)) {
        counted.add(step);
        crossAttemptSteps += 1;
      }
      if (seen !== loss && crossAttemptDifference === null)
        crossAttemptDifference = { step, first: seen, other: loss };
    }
  let referenceSteps: number | null = null;
  let referenceDifference: ReplayCheck['referenceDifference'] = null;
  if (reference !== null) {
    referenceSteps = 0;
    const steps = [...new Set(attempts.flatMap((a) => [...a.keys()]))].sort((a, b) => a - b);
    for (const step of steps) {
      const want = reference.get(step);
      if (want === undefined) continue;
      referenceSteps += 1;
      for (const losses of attempts) {
        const got = losses.get(step);
        if (got !== undefined && got !== want && referenceDifference === null)
          referenceDifference = { step, campaign: got, reference: want };
      }
    }
  }
  return { referenceSteps, referenceDifference, crossAttemptSteps, crossAttemptDifference };
}

/** The campaign's violations: every fault's, the replay's, lost checkpoints and the job's end. */
export function campaignViolations(
  faults: readonly FaultMeasurement[],
  replay: ReplayCheck,
  checkpoints: CheckpointCheck,
  jobState: string,
): string[] {
  const out = faults.flatMap((f) => f.violations.map((v) => `fault ${f.index} (${f.kind}): ${v}`));
  if (replay.referenceDifference !== null)
    out.push(
      `step ${replay.referenceDifference.step}: loss ${replay.referenceDifference.campaign} differs from the reference ${replay.referenceDifference.reference}`,
    );
  if (replay.crossAttemptDifference !== null)
    out.push(
      `step ${replay.crossAttemptDifference.step}: attempts logged different losses (${replay.crossAttemptDifference.first}, ${replay.crossAttemptDifference.other})`,
    );
  if (replay.referenceSteps === 0) out.push('no step could be compared with the reference run');
  for (const l of checkpoints.lost) out.push(`L3 checkpoint of step ${l.step} lost: ${l.why}`);
  if (jobState === 'failed') out.push('the job failed');
  return out;
}

function seconds(s: Spread): string {
  return s.n === 0
    ? '-'
    : `${(s.min as number).toFixed(1)} / ${(s.median as number).toFixed(1)} / ${(s.max as number).toFixed(1)}`;
}

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(3, ...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)];
}

/** The report as Markdown: the table by fault kind, then the campaign-wide checks. */
export function formatReport(r: ChaosReport): string {
  const header = [
    'fault',
    'n',
    'detected',
    'classified',
    'detect s (min/med/max)',
    'recovery s (min/med/max)',
    'restarts',
    'spares',
    'healthy cordons',
    'stragglers',
    'repairs',
  ];
  const rows = r.byKind.map((k) => [
    k.kind,
    String(k.count),
    `${k.detected}/${k.count}`,
    Object.entries(k.classifications)
      .map(([c, n]) => `${c} ${n}`)
      .join(', '),
    seconds(k.detectionSeconds),
    seconds(k.recoverySeconds),
    String(k.restarts),
    String(k.sparesTaken),
    String(k.healthyCordons),
    String(k.stragglerEvents),
    String(k.repairs),
  ]);
  const table = markdownTable(header, rows);
  const replay =
    r.replay.referenceSteps === null
      ? 'not checked against a reference (--no-reference)'
      : r.replay.referenceDifference === null && r.replay.referenceSteps > 0
        ? `identical bit for bit (${r.replay.referenceSteps} step${r.replay.referenceSteps === 1 ? '' : 's'} compared)`
        : r.replay.referenceDifference === null
          ? 'no step compared'
          : `DIFFERS from step ${r.replay.referenceDifference.step}`;
  const lines = [
    `chaos campaign, seed ${r.seed}: ${r.faults.length} faults in ${Math.round(r.durationSeconds)} s (wall time, recoveries included)`,
    '',
    ...table,
    '',
    `- job ${r.job.id}: ${r.job.state}, ${r.job.restarts} restarts, last step ${r.job.lastStep ?? '-'}`,
    `- recovery (fault to training again), all faults: ${seconds(r.recoverySeconds)} s`,
    `- corruption caught: ${r.corruption.caught}/${r.corruption.injected} (${r.corruption.rejectedInLog} rejected by checksum in the rank log)`,
    `- stragglers: ${r.stragglers.detected}/${r.stragglers.injected} throttled ranks reported`,
    `- replay vs fault-free reference: ${replay}; across attempts: ${r.replay.crossAttemptDifference === null ? `identical (${r.replay.crossAttemptSteps} steps run more than once)` : `DIFFER at step ${r.replay.crossAttemptDifference.step}`}`,
    `- checkpoints lost: ${r.checkpoints.lost.length} (${r.checkpoints.l3Checked} retained L3 checkpoints verified)`,
    ...r.faults
      .filter((f) => f.kind === 'control-plane-kill' && f.note !== null)
      .map((f) => `- control plane, fault ${f.index}: ${f.note}`),
    r.violations.length === 0
      ? '- invariants: all held'
      : `- invariants BROKEN:\n${r.violations.map((v) => `  - ${v}`).join('\n')}`,
  ];
  return lines.join('\n');
}
