/**
 * What a directory given to `cube ckpt` holds. Three shapes are understood:
 * - a directory with level roots `L1/`, `L2/`, `L3/` (any subset) inside: `<dir>/L3/<job>/step-*`;
 * - one level root: `<dir>/<job>/step-*` (its level from its name `L1`..`L3`, `--level`, or
 *   the manifests in it);
 * - one job's directory inside a level root: `<dir>/step-*` (the job is the directory's name).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CubeError, unknownIdError } from '../core/index.ts';
import { FsDurableStore } from './fs-store.ts';
import { listJobs, listSteps } from './level-root.ts';
import { parseStepDirName } from './layout.ts';
import { readManifest } from './scan.ts';
import { levels, levelSchema, type Level } from './schemas.ts';

/** A level root found in a checkpoint directory. */
export interface FoundRoot {
  readonly level: Level;
  readonly store: FsDurableStore;
}

export interface CheckpointDir {
  /** The directory as given, resolved. */
  readonly path: string;
  readonly shape: 'levels' | 'level-root' | 'job-dir';
  /** In level order (L1, L2, L3). */
  readonly roots: readonly FoundRoot[];
  /** Jobs with at least one step directory in some root, sorted. */
  readonly jobs: readonly string[];
}

function asLevel(name: string): Level | undefined {
  const parsed = levelSchema.safeParse(name);
  return parsed.success ? parsed.data : undefined;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** The level named by the first valid manifest under a root (for a root with no level name). */
async function levelFromManifests(store: FsDurableStore): Promise<Level | undefined> {
  for (const job of await listJobs(store))
    for (const step of (await listSteps(store, job)).reverse()) {
      const read = await readManifest(store, job, step);
      if (read.kind === 'valid') return read.value.level;
    }
  return undefined;
}

async function jobsWithSteps(roots: readonly FoundRoot[]): Promise<string[]> {
  const jobs = new Set<string>();
  for (const { store } of roots)
    for (const job of await listJobs(store))
      if ((await listSteps(store, job)).length > 0) jobs.add(job);
  return [...jobs].sort();
}

/**
 * Opens a checkpoint directory for reading. Throws (exit 2) when it does not exist, is not a
 * directory, holds nothing recognisable, or its level cannot be told (pass `level`).
 */
export async function openCheckpointDir(
  dir: string,
  options: { readonly level?: Level } = {},
): Promise<CheckpointDir> {
  const path = resolve(dir);
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new CubeError('FILE_NOT_FOUND', `checkpoint directory not found: ${path}`, {
      where: { file: path },
    });
  }
  if (!info.isDirectory())
    throw new CubeError('INVALID_VALUE', `${path} is a file; expected a checkpoint directory`, {
      where: { file: path },
      hint: 'give a directory holding L1/ L2/ L3/, a level root, or a job directory',
    });

  const levelDirs: FoundRoot[] = [];
  for (const level of levels)
    if (
      (options.level === undefined || options.level === level) &&
      (await isDirectory(join(path, level)))
    )
      levelDirs.push({ level, store: new FsDurableStore(join(path, level)) });
  if (levelDirs.length > 0)
    return { path, shape: 'levels', roots: levelDirs, jobs: await jobsWithSteps(levelDirs) };

  const names = await readdir(path);
  const unknownLevel = (where: string): CubeError =>
    new CubeError('BAD_FLAG', `cannot tell which level ${where} is`, {
      where: { file: where, field: '--level', allowed: [...levels] },
      hint: 'pass --level L1, L2 or L3',
    });

  if (names.some((n) => parseStepDirName(n) !== null)) {
    // A job directory: the level root is its parent.
    const job = basename(path);
    const rootPath = dirname(path);
    const store = new FsDurableStore(rootPath);
    const level = options.level ?? asLevel(basename(rootPath)) ?? (await levelFromManifests(store));
    if (level === undefined) throw unknownLevel(rootPath);
    return { path, shape: 'job-dir', roots: [{ level, store }], jobs: [job] };
  }

  const store = new FsDurableStore(path);
  const roots: FoundRoot[] = [{ level: 'L3', store }];
  const jobs = await jobsWithSteps(roots);
  if (jobs.length === 0 && asLevel(basename(path)) === undefined && options.level === undefined)
    throw new CubeError('INVALID_VALUE', `${path} holds no checkpoints`, {
      where: { file: path },
      hint: 'expected L1/ L2/ L3/ level roots, a level root (<job>/step-*/), or a job directory (step-*/)',
    });
  const level = options.level ?? asLevel(basename(path)) ?? (await levelFromManifests(store));
  if (level === undefined) throw unknownLevel(path);
  return { path, shape: 'level-root', roots: [{ level, store }], jobs };
}

/**
 * The job to show: `job` when given (it must exist), else the only one. Null when there is
 * none. Throws (exit 2) when several jobs are there and none was chosen.
 */
export function selectJob(dir: CheckpointDir, job: string | undefined): string | null {
  if (job !== undefined) {
    if (!dir.jobs.includes(job))
      throw unknownIdError('job', job, dir.jobs, { file: dir.path, field: '--job' });
    return job;
  }
  if (dir.jobs.length <= 1) return dir.jobs[0] ?? null;
  throw new CubeError(
    'BAD_FLAG',
    `${dir.path} holds ${dir.jobs.length} jobs (${dir.jobs.join(', ')}); choose one with --job`,
    { where: { file: dir.path, field: '--job', allowed: dir.jobs } },
  );
}
