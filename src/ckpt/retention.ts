/**
 * Retention and garbage collection (docs/checkpoint-format.md, "Retention and garbage
 * collection"): a pure plan, and a driver that deletes what the plan says.
 */
import { asStore, type LevelRoot } from './fs-store.ts';
import { manifestKey, parseRecordName, stepPrefix } from './layout.ts';
import type { LeaseRegistry } from './leases.ts';
import { scanJob, isCommitted, type StepStatus } from './scan.ts';
import { levels, type Level } from './schemas.ts';

/** How many committed steps each level keeps by default. */
export const defaultKeep: Readonly<Record<Level, number>> = { L1: 2, L2: 2, L3: 3 };

/** Why GC keeps a step. */
export type KeepReason =
  /** Among the newest `keep` committed steps of its level. */
  | 'within-keep'
  /** The newest committed step of some level: never deleted anywhere. */
  | 'newest-complete'
  /** Held by a lease: being read, replicated or persisted. */
  | 'leased'
  /** Newer than its level's newest committed step: it may be in flight. */
  | 'in-flight';

/** Why GC deletes a step. */
export type DeleteReason =
  /** Committed, but older than the newest `keep`. */
  | 'beyond-keep'
  /** Never committed and older than a committed step: an abandoned save. */
  | 'abandoned'
  /** Its manifest cannot be trusted and a newer step is committed. */
  | 'invalid';

export type RetentionDecision =
  | {
      readonly kind: 'keep';
      readonly level: Level;
      readonly step: number;
      readonly reason: KeepReason;
    }
  | {
      readonly kind: 'delete';
      readonly level: Level;
      readonly step: number;
      readonly reason: DeleteReason;
    };

export interface RetentionOptions {
  /** Per level; missing levels take `defaultKeep`. */
  readonly keep?: Partial<Readonly<Record<Level, number>>>;
  /** True when a lease holds the step. */
  readonly isLeased?: (step: number) => boolean;
}

/**
 * How recent a step is: by timeline, then by step number. A run that restarted from an older
 * step writes a higher timeline, so its steps are newer than any step of the abandoned run, even
 * ones with larger numbers (docs/checkpoint-format.md, "Timelines"). A step whose timeline nothing
 * says yet (a replica in flight, no record written) counts as of the newest timeline present.
 */
function recency(
  status: StepStatus,
  newestTimeline: number,
): readonly [timeline: number, step: number] {
  return [status.timeline ?? newestTimeline, status.step];
}

function newer(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

/**
 * Decides, for one job, which steps each level keeps. A level root's "complete" step here is
 * a committed one (a valid manifest: complete, or partial at L1/L2, where a node's root holds
 * its own ranks). Steps are ordered by timeline, then step number (`recency`). Per level the
 * newest `keep` committed steps stay; besides, no level deletes the newest committed step of
 * any level passed in, a leased step, or a step newer than its level's newest committed one
 * (it may be in flight; with nothing committed, nothing goes).
 */
export function planRetention(
  statuses: Partial<Readonly<Record<Level, readonly StepStatus[]>>>,
  options: RetentionOptions = {},
): RetentionDecision[] {
  const newestTimeline = levels
    .flatMap((l) => statuses[l] ?? [])
    .reduce((t, s) => Math.max(t, s.timeline ?? 0), 0);
  const key = (s: StepStatus): readonly [number, number] => recency(s, newestTimeline);
  const newestOf = (list: readonly StepStatus[]): StepStatus | undefined =>
    list
      .filter(isCommitted)
      .reduce<StepStatus | undefined>(
        (m, s) => (m === undefined || newer(key(s), key(m)) ? s : m),
        undefined,
      );
  const protectedSteps = new Set<number>();
  for (const level of levels) {
    const newest = newestOf(statuses[level] ?? []);
    if (newest !== undefined) protectedSteps.add(newest.step);
  }
  const decisions: RetentionDecision[] = [];
  for (const level of levels) {
    const list = [...(statuses[level] ?? [])].sort((a, b) => {
      const [ka, kb] = [key(a), key(b)];
      return kb[0] - ka[0] || kb[1] - ka[1];
    });
    const keep = Math.max(0, options.keep?.[level] ?? defaultKeep[level]);
    const newestStatus = newestOf(list);
    const newest = newestStatus === undefined ? undefined : key(newestStatus);
    let committedSeen = 0;
    for (const status of list) {
      const step = status.step;
      const committed = isCommitted(status);
      // Position among this level's committed steps, newest first (0 = the newest).
      const position = committed ? committedSeen++ : Number.POSITIVE_INFINITY;
      const keepFor = (reason: KeepReason): RetentionDecision => ({
        kind: 'keep',
        level,
        step,
        reason,
      });
      if (newest === undefined || newer(key(status), newest)) decisions.push(keepFor('in-flight'));
      else if (options.isLeased?.(step) === true) decisions.push(keepFor('leased'));
      else if (protectedSteps.has(step)) decisions.push(keepFor('newest-complete'));
      else if (position < keep) decisions.push(keepFor('within-keep'));
      else
        decisions.push({
          kind: 'delete',
          level,
          step,
          reason: committed ? 'beyond-keep' : status.state === 'invalid' ? 'invalid' : 'abandoned',
        });
    }
  }
  return decisions;
}

/**
 * Deletes one step from a level root in the safe order: the manifest first (from then on no
 * reader trusts the step), then the records, then the shard files, then the directory with
 * anything left in it (a writer's temp files). L1 slots live outside the step directory and
 * are never deleted.
 */
export async function deleteStep(
  root: LevelRoot,
  job: string,
  step: number,
  options: { readonly signal?: AbortSignal } = {},
): Promise<void> {
  const store = asStore(root);
  await store.delete(manifestKey(job, step));
  const prefix = stepPrefix(job, step);
  const { objects } = await store.list(prefix, options);
  const isRecord = (key: string): boolean => parseRecordName(key.slice(prefix.length)) !== null;
  for (const o of objects.filter((o) => isRecord(o.key))) await store.delete(o.key);
  for (const o of objects.filter((o) => !isRecord(o.key))) await store.delete(o.key);
  await store.deletePrefix(prefix);
}

export interface GarbageCollection {
  readonly decisions: readonly RetentionDecision[];
  /** What was deleted (nothing with `dryRun`). */
  readonly deleted: readonly { readonly level: Level; readonly step: number }[];
}

/**
 * Scans the given level roots for one job, plans retention across them, and deletes what the
 * plan says, checking the lease again just before each deletion (a reader may have taken one
 * since the plan). Steps of levels not passed in are neither considered nor protected.
 */
export async function collectGarbage(
  roots: Partial<Readonly<Record<Level, LevelRoot>>>,
  job: string,
  options: {
    readonly keep?: Partial<Readonly<Record<Level, number>>>;
    readonly leases?: LeaseRegistry;
    readonly dryRun?: boolean;
    readonly signal?: AbortSignal;
  } = {},
): Promise<GarbageCollection> {
  const signal = options.signal === undefined ? {} : { signal: options.signal };
  const statuses: Partial<Record<Level, StepStatus[]>> = {};
  for (const level of levels) {
    const root = roots[level];
    if (root !== undefined) statuses[level] = await scanJob(root, job, { level, ...signal });
  }
  const leases = options.leases;
  const decisions = planRetention(statuses, {
    ...(options.keep === undefined ? {} : { keep: options.keep }),
    ...(leases === undefined ? {} : { isLeased: (step: number) => leases.isHeld(job, step) }),
  });
  const deleted: { level: Level; step: number }[] = [];
  if (options.dryRun !== true)
    for (const d of decisions) {
      if (d.kind !== 'delete') continue;
      options.signal?.throwIfAborted();
      if (leases?.isHeld(job, d.step) === true) continue;
      const root = roots[d.level];
      if (root === undefined) continue;
      await deleteStep(root, job, d.step, signal);
      deleted.push({ level: d.level, step: d.step });
    }
  return { decisions, deleted };
}
