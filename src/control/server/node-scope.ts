import type { Job, Node } from '../model/index.ts';
import type { StateStore } from '../store/index.ts';

/** What a node's report is about: one rank of one attempt of a job. */
export interface RankRef {
  readonly jobId: string;
  readonly attempt: number;
  readonly rank: number;
}

/** An event an agent pushes, as far as its scope goes. */
export type ScopedEvent =
  | ({ readonly kind: 'rank-exited' | 'progress' | 'restored' } & RankRef)
  | { readonly kind: 'checkpoint-committed'; readonly jobId: string }
  | { readonly kind: 'probe-failed' };

// Placements of past attempts are looked up in the job's `job-scheduled` events; they never
// change once written, so they are remembered (a bounded number of them).
const maxRemembered = 4096;

/**
 * What a node credential may report (finding 3 of issue 13): events, logs and progress of a
 * (job, rank, attempt) only when that attempt placed the rank on the node; a checkpoint commit
 * only for a job with a rank on the node now; probe failures only for itself (the route's own
 * node). Each check answers null (allowed) or why not.
 */
export class NodeScope {
  readonly #store: StateStore;
  readonly #pastPlacements = new Map<string, ReadonlyMap<number, string> | null>();

  constructor(store: StateStore) {
    this.#store = store;
  }

  /**
   * Null when `node` may report about `ref`, else why not. `options.job` is the job as the
   * caller already read it for this request (null: there is none), so that a request about many
   * ranks of one job reads it once, not once per rank.
   */
  async refusal(
    node: Node,
    ref: RankRef,
    options: { readonly job?: Job | null } = {},
  ): Promise<string | null> {
    const job = options.job !== undefined ? options.job : await this.#store.getJob(ref.jobId);
    if (job === null) return `no job "${ref.jobId}"`;
    if (ref.attempt > job.attempt)
      return `job ${job.id} has no attempt ${ref.attempt} (its current one is ${job.attempt})`;
    const placed = await this.#placement(job, ref.attempt);
    if (placed?.get(ref.rank) !== node.id)
      return `rank ${ref.rank} of job ${job.id} (attempt ${ref.attempt}) is not placed on node ${node.name}`;
    return null;
  }

  /** Null when `node` may push `event`, else why not. */
  async eventRefusal(node: Node, event: ScopedEvent): Promise<string | null> {
    switch (event.kind) {
      case 'rank-exited':
      case 'progress':
      case 'restored':
        return this.refusal(node, event);
      case 'checkpoint-committed': {
        const job = await this.#store.getJob(event.jobId);
        if (job === null) return `no job "${event.jobId}"`;
        if (!(job.placement ?? []).some((p) => p.nodeId === node.id))
          return `job ${job.id} has no rank on node ${node.name}`;
        return null;
      }
      case 'probe-failed':
        // The route is the node's own (`/agents/<its id>/events`): it can only name itself.
        return null;
      default:
        return event satisfies never;
    }
  }

  async #placement(job: Job, attempt: number): Promise<ReadonlyMap<number, string> | null> {
    if (attempt === job.attempt)
      return job.placement === null ? null : new Map(job.placement.map((p) => [p.rank, p.nodeId]));
    const key = `${job.id}:${attempt}`;
    const known = this.#pastPlacements.get(key);
    if (known !== undefined) return known;
    let found: Map<number, string> | null = null;
    for (const e of await this.#store.listEvents({ jobId: job.id, kinds: ['job-scheduled'] }))
      if (e.kind === 'job-scheduled' && e.attempt === attempt) {
        const placement = (e.data as { placement?: unknown }).placement;
        if (Array.isArray(placement)) {
          found = new Map();
          for (const p of placement as { rank?: unknown; nodeId?: unknown }[])
            if (typeof p.rank === 'number' && typeof p.nodeId === 'string')
              found.set(p.rank, p.nodeId);
        }
      }
    if (this.#pastPlacements.size >= maxRemembered) this.#pastPlacements.clear();
    this.#pastPlacements.set(key, found);
    return found;
  }
}
