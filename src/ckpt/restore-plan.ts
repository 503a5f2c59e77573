/**
 * Choosing what to restore (docs/checkpoint-format.md, "Restore order"), as a pure function of
 * what the restoring ranks can see: every rank restores the same (step, timeline) pair, the
 * newest step for which every rank has a source of one timeline (then the highest timeline);
 * each rank's sources are ordered own-node L1, then L2 (own node first, then the others by
 * name), then L3. A shard of the same step number but another timeline is never a source: it
 * belongs to a run that restarted from an older step, and combining it would mix two runs.
 */
import type { LevelRoot } from './fs-store.ts';
import { isCommitted, type StepStatus } from './scan.ts';
import type { Level, ManifestShard } from './schemas.ts';

/** A committed manifest somewhere: one node's L1 or L2 root, or L3. */
export interface Holding {
  readonly level: Level;
  /** The node whose L1 or L2 root holds it; null at L3 (shared by all). */
  readonly node: string | null;
  readonly job: string;
  readonly step: number;
  /** The manifest's timeline (0 for files written before timelines existed). */
  readonly timeline: number;
  readonly worldSize: number;
  readonly shards: readonly ManifestShard[];
  /** The level root, when it can be read from this process (a local path or a store). */
  readonly root?: LevelRoot;
}

interface SourceBase {
  readonly step: number;
  readonly timeline: number;
  readonly shard: ManifestShard;
  readonly holding: Holding;
}

/** Where a rank can read its shard from, in restore order. */
export type ShardSource =
  | (SourceBase & { readonly kind: 'own-l1'; readonly node: string })
  | (SourceBase & { readonly kind: 'l2'; readonly node: string })
  | (SourceBase & { readonly kind: 'l3' });

/** The level a source kind reads from. */
export function sourceLevel(source: ShardSource): Level {
  switch (source.kind) {
    case 'own-l1':
      return 'L1';
    case 'l2':
      return 'L2';
    case 'l3':
      return 'L3';
    default:
      return source satisfies never;
  }
}

/** One rank's sources for one step, best first. */
export interface RankSources {
  readonly rank: number;
  /** The node the rank restores on. */
  readonly node: string;
  readonly sources: readonly ShardSource[];
}

/** A (step, timeline) pair every rank has at least one source for. */
export interface StepCandidate {
  readonly step: number;
  readonly timeline: number;
  readonly ranks: readonly RankSources[];
}

export interface RestorePlan {
  readonly job: string;
  readonly worldSize: number;
  /** Newest first; the first is the choice, the rest are the fallbacks. */
  readonly candidates: readonly StepCandidate[];
  /** Pairs that some rank has no source for, newest first (why they are not candidates). */
  readonly incomplete: readonly {
    readonly step: number;
    readonly timeline: number;
    readonly ranks: readonly number[];
  }[];
}

export interface RestoreRequest {
  readonly job: string;
  readonly worldSize: number;
  /** `rankNodes[r]` is the node rank r restores on (after any replacement). */
  readonly rankNodes: readonly string[];
  /** Committed manifests visible from the restoring nodes. Others' L1 roots are ignored. */
  readonly holdings: readonly Holding[];
}

const order: Readonly<Record<ShardSource['kind'], number>> = { 'own-l1': 0, l2: 1, l3: 2 };

/**
 * Plans a restore. Holdings of another job or world size are ignored (resuming on a different
 * world size is resharding, not restore). Pure: no file is read; `selectRestore` verifies.
 */
export function planRestore(request: RestoreRequest): RestorePlan {
  const { job, worldSize, rankNodes } = request;
  // Keyed by the pair: holdings of one step number but two timelines are two candidates.
  const byPair = new Map<string, { step: number; timeline: number; holdings: Holding[] }>();
  for (const h of request.holdings) {
    if (h.job !== job || h.worldSize !== worldSize) continue;
    const key = `${h.step}:${h.timeline}`;
    const entry = byPair.get(key) ?? { step: h.step, timeline: h.timeline, holdings: [] };
    entry.holdings.push(h);
    byPair.set(key, entry);
  }
  const candidates: StepCandidate[] = [];
  const incomplete: { step: number; timeline: number; ranks: number[] }[] = [];
  const pairs = [...byPair.values()].sort((a, b) => b.step - a.step || b.timeline - a.timeline);
  for (const { step, timeline, holdings } of pairs) {
    const ranks: RankSources[] = [];
    const without: number[] = [];
    for (let rank = 0; rank < worldSize; rank++) {
      const node = rankNodes[rank] ?? '';
      const sources: ShardSource[] = [];
      for (const holding of holdings) {
        const shard = holding.shards.find((s) => s.rank === rank);
        if (shard === undefined) continue;
        const base = { step, timeline, shard, holding };
        if (holding.level === 'L1') {
          // Another node's memory is not a restore source: that node may be the failed one.
          if (holding.node === node) sources.push({ ...base, kind: 'own-l1', node });
        } else if (holding.level === 'L2') {
          if (holding.node !== null) sources.push({ ...base, kind: 'l2', node: holding.node });
        } else sources.push({ ...base, kind: 'l3' });
      }
      sources.sort(
        (a, b) =>
          order[a.kind] - order[b.kind] ||
          // Among replicas: the restoring node's own first, then by node name (deterministic).
          Number(b.kind === 'l2' && b.node === node) - Number(a.kind === 'l2' && a.node === node) ||
          ('node' in a && 'node' in b ? a.node.localeCompare(b.node) : 0),
      );
      if (sources.length === 0) without.push(rank);
      ranks.push({ rank, node, sources });
    }
    if (without.length === 0) candidates.push({ step, timeline, ranks });
    else incomplete.push({ step, timeline, ranks: without });
  }
  return { job, worldSize, candidates, incomplete };
}

/**
 * The holdings of scanned step statuses at one root: committed ones only (complete, or
 * partial at L1/L2); at L3 only complete ones. `node` is the root's node (null for L3).
 */
export function holdingsFromStatuses(
  statuses: readonly StepStatus[],
  where: { readonly node: string | null; readonly root?: LevelRoot },
): Holding[] {
  const out: Holding[] = [];
  for (const s of statuses) {
    const m = s.manifest;
    if (m === null || !isCommitted(s)) continue;
    if (s.level === 'L3' && !s.complete) continue;
    out.push({
      level: s.level,
      node: s.level === 'L3' ? null : where.node,
      job: s.job,
      step: s.step,
      timeline: m.timeline,
      worldSize: m.worldSize,
      shards: m.shards,
      ...(where.root === undefined ? {} : { root: where.root }),
    });
  }
  return out;
}
