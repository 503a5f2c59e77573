import type { Job, JobState } from './api/types.ts';

/**
 * The number of steps a job trains for, when its command says so (`--steps N` or
 * `--steps=N`, as the example trainer and most trainers take it); null otherwise, and the
 * views then show the step without a percentage.
 */
export function totalSteps(job: Job): number | null {
  const argv = job.spec.command;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const inline = /^--(?:steps|max-steps|train-iters)=(\d+)$/.exec(arg);
    if (inline?.[1] !== undefined) return Number(inline[1]);
    if (/^--(?:steps|max-steps|train-iters)$/.test(arg)) {
      const next = Number(argv[i + 1]);
      if (Number.isInteger(next) && next > 0) return next;
    }
  }
  return null;
}

/** The job's world size. */
export function worldSize(job: Job): number {
  return job.spec.ranks.nodes * job.spec.ranks.devicesPerNode;
}

/** True for states a job never leaves. */
export function ended(state: JobState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}
