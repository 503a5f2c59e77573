/**
 * Executing a restore plan's choice: verify each rank's shard before it is used, falling back
 * to the rank's next source, then to the next candidate (step, timeline) pair (for every rank:
 * they all restore the same pair). The Python client implements the same policy.
 */
import { mapLimit } from './map-limit.ts';
import type { RestorePlan, ShardSource } from './restore-plan.ts';
import { sourceLevel } from './restore-plan.ts';
import type { Level } from './schemas.ts';
import { verifyShard, type ObjectCheck } from './verify.ts';

/** Checks one source's shard (size and checksum); never throws for a bad shard. */
export type SourceCheck = (
  source: ShardSource,
  options: { readonly signal?: AbortSignal },
) => Promise<ObjectCheck>;

/** Checks a source whose level root is readable from this process. */
export const checkSourceLocally: SourceCheck = async (source, options) => {
  const root = source.holding.root;
  if (root === undefined)
    return {
      kind: 'unreadable',
      file: source.shard.file,
      message: `${source.shard.file}: ${sourceLevel(source)}${'node' in source ? ` on ${source.node}` : ''} is not readable from here`,
    };
  return verifyShard(root, source.holding.job, source.shard, options);
};

/** One check the driver made, in the order it made them. */
export interface RestoreAttempt {
  readonly step: number;
  readonly timeline: number;
  readonly rank: number;
  readonly level: Level;
  /** The node of an L1 or L2 source; null at L3. */
  readonly node: string | null;
  readonly check: ObjectCheck;
}

export type RestoreSelection =
  | {
      readonly kind: 'selected';
      readonly step: number;
      /** Every rank's source has this timeline. */
      readonly timeline: number;
      /** Each rank's verified source. */
      readonly ranks: readonly {
        readonly rank: number;
        readonly node: string;
        readonly source: ShardSource;
      }[];
      readonly attempts: readonly RestoreAttempt[];
    }
  | {
      readonly kind: 'none';
      readonly reason: string;
      readonly attempts: readonly RestoreAttempt[];
    };

/**
 * Walks the plan's candidates newest first; within one, verifies each rank's sources in order
 * and keeps the first good one. A rank with no good source rejects the step (the remaining
 * ranks of it are not checked) and the next candidate is tried.
 */
export async function selectRestore(
  plan: RestorePlan,
  options: {
    readonly check?: SourceCheck;
    readonly concurrency?: number;
    readonly signal?: AbortSignal;
  } = {},
): Promise<RestoreSelection> {
  const check = options.check ?? checkSourceLocally;
  const signal = options.signal === undefined ? {} : { signal: options.signal };
  const attempts: RestoreAttempt[] = [];
  for (const candidate of plan.candidates) {
    let rejected = false;
    const chosen = await mapLimit(candidate.ranks, options.concurrency ?? 4, async (rank) => {
      for (const source of rank.sources) {
        if (rejected) return null;
        options.signal?.throwIfAborted();
        const result = await check(source, signal);
        attempts.push({
          step: candidate.step,
          timeline: candidate.timeline,
          rank: rank.rank,
          level: sourceLevel(source),
          node: 'node' in source ? source.node : null,
          check: result,
        });
        if (result.kind === 'ok') return { rank: rank.rank, node: rank.node, source };
      }
      rejected = true;
      return null;
    });
    if (!rejected && chosen.every((c) => c !== null))
      return {
        kind: 'selected',
        step: candidate.step,
        timeline: candidate.timeline,
        ranks: chosen,
        attempts,
      };
  }
  const reason =
    plan.candidates.length === 0
      ? `no committed step of ${plan.job} has a source for every one of its ${plan.worldSize} ranks`
      : `every candidate step of ${plan.job} (${plan.candidates.map((c) => `${c.step} timeline ${c.timeline}`).join(', ')}) has a rank without a verified shard`;
  return { kind: 'none', reason, attempts };
}
