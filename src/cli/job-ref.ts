import { constants } from 'node:os';
import { CubeError, unknownIdError } from '../core/index.ts';
import type { Event, Job } from '../control/model/index.ts';
import type { ApiClient } from './api-client.ts';

const terminal: readonly string[] = ['succeeded', 'failed', 'cancelled'];

/**
 * The job `ref` names: a job id, or a job's name (`spec.name`). A name means the newest job
 * with it, unless several unfinished jobs share it: then which one is meant is a guess, and the
 * error lists their ids. An unknown ref is UNKNOWN_ID with the nearest ids and names.
 */
export async function resolveJob(api: ApiClient, ref: string): Promise<Job> {
  const { jobs } = await api.request<{ jobs: Job[] }>('GET', '/jobs');
  const byId = jobs.find((j) => j.id === ref);
  if (byId !== undefined) return byId;
  const named = jobs
    .filter((j) => j.spec.name === ref)
    .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  const unfinished = named.filter((j) => !terminal.includes(j.state));
  if (unfinished.length > 1)
    throw new CubeError(
      'INVALID_VALUE',
      `${unfinished.length} unfinished jobs are named "${ref}": ${unfinished.map((j) => `${j.id} (${j.state})`).join(', ')}`,
      { where: { field: 'job' }, hint: 'give the job id instead of the name' },
    );
  const newest = named[0];
  if (newest !== undefined) return newest;
  const known = [...jobs.map((j) => j.id), ...new Set(jobs.map((j) => j.spec.name))];
  throw unknownIdError('job', ref, known, { field: 'job' });
}

/** The number of ranks of a job: its gang's size. */
export function worldSize(job: Job): number {
  return job.spec.ranks.nodes * job.spec.ranks.devicesPerNode;
}

/** A `--rank` outside the job's ranks is bad input, not an empty log. */
export function checkRank(job: Job, rank: number): void {
  const size = worldSize(job);
  if (rank >= size)
    throw new CubeError(
      'INVALID_VALUE',
      `rank ${rank} out of range: job ${job.id} has ranks 0..${size - 1}`,
      { where: { field: '--rank', rank } },
    );
}

/**
 * The exit code `cube submit --wait` ends with, as `srun` passes its tasks' through: 0 when the
 * job succeeded; 130 when it was cancelled (the code of a command the user interrupted); on a
 * failure the exit code of the first rank of the last attempt that exited non-zero (128 + the
 * signal's number when a signal killed it), or 1 when no rank's exit explains the failure (a
 * node was lost, the job could not be placed).
 */
export function jobExitCode(job: Job, events: readonly Event[]): number {
  if (job.state === 'succeeded') return 0;
  if (job.state === 'cancelled') return 130;
  const exits = events
    .filter((e) => e.kind === 'rank-exited' && e.attempt === job.attempt)
    .sort((a, b) => a.id - b.id);
  for (const e of exits) {
    const { exitCode, signal } = e.data as { exitCode?: number | null; signal?: string | null };
    if (typeof exitCode === 'number' && exitCode !== 0) return exitCode & 0xff || 1;
    if (typeof signal === 'string' && signal !== '') {
      const number = (constants.signals as Record<string, number | undefined>)[signal];
      return number === undefined ? 1 : 128 + number;
    }
  }
  return 1;
}

/** A job that ended other than in success; `exitCode` is what the `cube` process exits with. */
export class JobEndedError extends CubeError {
  readonly exitCode: number;

  constructor(message: string, exitCode: number, options: { hint?: string } = {}) {
    super('INFEASIBLE', message, options);
    this.exitCode = exitCode;
  }
}
