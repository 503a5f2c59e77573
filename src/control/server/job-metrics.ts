import type { CheckpointLevel, Job, ProgressSample } from '../model/index.ts';
import { isTerminalJobState } from '../model/index.ts';
import type { StateStore } from '../store/index.ts';
import { seriesOf } from './web-routes.ts';

/** One job's figures as the per-job series show them, read from the store at scrape time. */
export interface JobFigures {
  readonly jobId: string;
  readonly jobName: string;
  readonly step: number | null;
  readonly loss: number | null;
  readonly tokensPerS: number | null;
  readonly restarts: number;
  /** Per level: the checkpoint committed last, its step and commit time (epoch ms). */
  readonly checkpoints: Readonly<Partial<Record<CheckpointLevel, { step: number; at: number }>>>;
}

export interface JobFiguresOptions {
  /**
   * How long a finished job keeps its series (default 15 min): long enough for a scrape or two
   * to see its last values, short enough that a month of jobs does not pile up series.
   */
  readonly retentionMs?: number;
  readonly now?: () => number;
}

/**
 * Reads the per-job figures from the store: every job not yet finished, and finished ones
 * within the retention. What it reads survives a control-plane restart (the store is durable),
 * and per job it reads only the progress samples past the newest step it saw.
 */
export class JobFiguresReader {
  readonly #store: StateStore;
  readonly #retentionMs: number;
  readonly #now: () => number;
  /** The newest point seen per job (current attempt), so a scrape reads only newer samples. */
  readonly #newest = new Map<
    string,
    { attempt: number; step: number; loss: number | null; tokensPerS: number | null }
  >();

  /** Per job: the last `checkpoint-committed` event read, and the newest commit per level. */
  readonly #commits = new Map<
    string,
    { afterId: number; levels: Partial<Record<CheckpointLevel, { step: number; at: number }>> }
  >();

  constructor(store: StateStore, options: JobFiguresOptions = {}) {
    this.#store = store;
    this.#retentionMs = options.retentionMs ?? 15 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  async read(): Promise<JobFigures[]> {
    const now = this.#now();
    const figures: JobFigures[] = [];
    const keep = new Set<string>();
    for (const job of await this.#store.listJobs()) {
      if (isTerminalJobState(job.state) && (job.endedAt ?? 0) < now - this.#retentionMs) continue;
      keep.add(job.id);
      figures.push(await this.#figures(job));
    }
    for (const id of this.#newest.keys()) if (!keep.has(id)) this.#newest.delete(id);
    for (const id of this.#commits.keys()) if (!keep.has(id)) this.#commits.delete(id);
    return figures;
  }

  async #figures(job: Job): Promise<JobFigures> {
    const point = await this.#latest(job);
    return {
      jobId: job.id,
      jobName: job.spec.name,
      step: point?.step ?? null,
      loss: point?.loss ?? null,
      tokensPerS: point?.tokensPerS ?? null,
      restarts: job.restarts,
      checkpoints: await this.#checkpoints(job.id),
    };
  }

  /**
   * Per level, the checkpoint committed last (by time, not by step: after a restore from an
   * older step, the age counts from the newest commit). Read from the job's
   * `checkpoint-committed` events past the last one seen, so a month of checkpoints is read once.
   */
  async #checkpoints(jobId: string): Promise<JobFigures['checkpoints']> {
    const known = this.#commits.get(jobId) ?? { afterId: 0, levels: {} };
    const events = await this.#store.listEvents({
      jobId,
      kinds: ['checkpoint-committed'],
      afterId: known.afterId,
    });
    const levels = { ...known.levels };
    let afterId = known.afterId;
    for (const e of events) {
      afterId = Math.max(afterId, e.id);
      if (e.kind !== 'checkpoint-committed') continue;
      levels[e.data.level] = { step: e.data.step, at: Date.parse(e.at) };
    }
    this.#commits.set(jobId, { afterId, levels });
    return levels;
  }

  /**
   * The current attempt's newest complete step, combined over ranks as the dashboard combines
   * it (loss: the mean; tokens/s: the sum of the ranks' own figures).
   */
  async #latest(job: Job): Promise<{
    step: number;
    loss: number | null;
    tokensPerS: number | null;
  } | null> {
    const known = this.#newest.get(job.id);
    const sameAttempt = known !== undefined && known.attempt === job.attempt;
    // Two steps back: the newest step may have been half-reported at the previous scrape.
    const from = sameAttempt ? known.step - 2 : -1;
    const samples: ProgressSample[] = await this.#store.listProgress(job.id, {
      attempt: job.attempt,
      ...(from >= 0 ? { afterStep: from } : {}),
      limit: 10_000_000,
    });
    // A restarted attempt with no report yet: the last figures stand until it reports.
    if (samples.length === 0) return known ?? null;
    const top = samples.reduce((m, s) => Math.max(m, s.step), 0);
    const points = seriesOf(samples.filter((s) => s.step >= top - 1));
    const full = points.at(-1);
    const previous = points.at(-2);
    // The newest step may lack ranks; the one before it is complete when it exists.
    const best =
      full !== undefined && previous !== undefined && previous.ranks > full.ranks ? previous : full;
    if (best === undefined) return known ?? null;
    const latest = {
      attempt: job.attempt,
      step: best.step,
      loss: best.loss,
      tokensPerS: best.tokensPerS,
    };
    this.#newest.set(job.id, latest);
    return latest;
  }
}
