import { asStore, type LevelRoot } from './fs-store.ts';
import { jobPrefix, parseStepDirName } from './layout.ts';
import { jobIdSchema } from './schemas.ts';

/** The jobs a level root holds (directories whose names are job ids), sorted. */
export async function listJobs(
  root: LevelRoot,
  options: { readonly signal?: AbortSignal } = {},
): Promise<string[]> {
  const { prefixes } = await asStore(root).list('', options);
  return prefixes
    .map((p) => p.slice(0, -1))
    .filter((name) => jobIdSchema.safeParse(name).success)
    .sort();
}

/** The steps a job has a directory for at this level root, oldest first. */
export async function listSteps(
  root: LevelRoot,
  job: string,
  options: { readonly signal?: AbortSignal } = {},
): Promise<number[]> {
  const prefix = jobPrefix(job);
  const { prefixes } = await asStore(root).list(prefix, options);
  return prefixes
    .map((p) => parseStepDirName(p.slice(prefix.length, -1)))
    .filter((s): s is number => s !== null)
    .sort((a, b) => a - b);
}
