/**
 * The L3 fence of a job (docs/checkpoint-format.md, "Fencing"): `<L3 root>/<job>/fence.json`
 * names the newest attempt launched. An attempt below it is fenced: a rank of it that kept
 * running (its node was partitioned) may still save, but can no longer commit a step at L3,
 * the level every node and every later attempt restores from.
 */
import { z } from 'zod';
import { CubeError } from '../core/index.ts';
import { asStore, type LevelRoot } from './fs-store.ts';
import { readText } from './l3-store.ts';
import { jobPrefix } from './layout.ts';

/** The fence file's name inside a job's directory of a level root. */
export const fenceName = 'fence.json';

export const fenceSchema = z.object({
  format: z.literal('cube.fence/1'),
  job: z.string(),
  /** The newest attempt launched: timelines below it may not commit. */
  attempt: z.int().min(0),
  raisedAt: z.string(),
});
export type Fence = z.infer<typeof fenceSchema>;

/** `<job>/fence.json` */
export function fenceKey(job: string): string {
  return `${jobPrefix(job)}${fenceName}`;
}

/**
 * The job's fence at this level root, or null when none was raised. A fence file that does not
 * parse throws CORRUPT_DATA: guessing "no fence" would let a fenced attempt commit.
 */
export async function readFence(
  root: LevelRoot,
  job: string,
  options: { readonly signal?: AbortSignal } = {},
): Promise<Fence | null> {
  const store = asStore(root);
  const key = fenceKey(job);
  const text = await readText(store, key, options);
  if (text === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CubeError('CORRUPT_DATA', `the fence ${store.locate(key)} is not JSON`, {
      where: { file: store.locate(key) },
      cause: error,
    });
  }
  const fence = fenceSchema.safeParse(parsed);
  if (!fence.success || fence.data.job !== job)
    throw new CubeError(
      'CORRUPT_DATA',
      `the fence ${store.locate(key)} does not describe job ${job}: ${fence.success ? `it names ${fence.data.job}` : (fence.error.issues[0]?.message ?? 'invalid')}`,
      { where: { file: store.locate(key) } },
    );
  return fence.data;
}

/**
 * Raises the job's fence to `attempt`, never lowers it; returns the fence now in force.
 * Written atomically (temp file, fsync, rename). Two nodes raising at once can race (read,
 * then write), so after writing it reads back and raises again while a lower value won: the
 * highest attempt ends up in force.
 */
export async function raiseFence(
  root: LevelRoot,
  job: string,
  attempt: number,
  options: { readonly signal?: AbortSignal } = {},
): Promise<Fence> {
  const store = asStore(root);
  for (let tries = 0; ; tries++) {
    const held = await readFence(store, job, options);
    if (held !== null && held.attempt >= attempt) return held;
    if (tries >= 5)
      throw new CubeError(
        'STORAGE_FAILED',
        `could not raise the fence ${store.locate(fenceKey(job))} to attempt ${attempt}: it reads ${held?.attempt ?? 'nothing'} after 5 writes`,
        { where: { file: store.locate(fenceKey(job)) } },
      );
    const fence: Fence = {
      format: 'cube.fence/1',
      job,
      attempt,
      raisedAt: new Date().toISOString(),
    };
    await store.put(
      fenceKey(job),
      { kind: 'bytes', bytes: `${JSON.stringify(fence, null, 2)}\n` },
      options.signal === undefined ? {} : { signal: options.signal },
    );
  }
}

/** True for the error `checkFence` throws (INFEASIBLE, `where.field` "fence"). */
export function isFenced(error: unknown): boolean {
  return error instanceof CubeError && error.code === 'INFEASIBLE' && error.where.field === 'fence';
}

/**
 * Throws INFEASIBLE (`where.field` "fence", see `isFenced`) when a commit of `timeline` at this
 * level root is fenced: a newer attempt was launched, so this one's ranks are leftovers (a
 * partitioned node that kept running).
 */
export async function checkFence(
  root: LevelRoot,
  job: string,
  step: number,
  timeline: number,
  options: { readonly signal?: AbortSignal } = {},
): Promise<void> {
  const fence = await readFence(root, job, options);
  if (fence !== null && timeline < fence.attempt)
    throw new CubeError(
      'INFEASIBLE',
      `step ${step} of ${job} (timeline ${timeline}) is fenced at ${asStore(root).locate(fenceKey(job))}: attempt ${fence.attempt} was launched since, so an older attempt may not commit`,
      {
        where: { file: asStore(root).locate(fenceKey(job)), field: 'fence' },
        hint: 'this rank belongs to an attempt the control plane replaced; its node agent stops it once it reconnects',
      },
    );
}
