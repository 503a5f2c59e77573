/**
 * Names inside a level root (docs/checkpoint-format.md, "Layout of a level root"). Keys are
 * `/`-separated paths relative to the level root, the same on a filesystem and in an object
 * store: `<job>/step-0000000100/rank-00000.json`.
 */
import { CubeError } from '../core/index.ts';
import { jobIdSchema, maxRank, maxStep } from './schemas.ts';

const stepDirPattern = /^step-(\d{10})$/;
const recordPattern = /^rank-(\d{5})\.json$/;
const shardPattern = /^rank-(\d{5})\.safetensors$/;

/** The manifest's file name inside a step directory. */
export const manifestName = 'manifest.json';

/** `step-0000000100` */
export function stepDirName(step: number): string {
  if (!Number.isSafeInteger(step) || step < 0 || step > maxStep)
    throw new CubeError('INVALID_VALUE', `step ${step} is not an integer in 0..${maxStep}`, {
      where: { field: 'step' },
    });
  return `step-${String(step).padStart(10, '0')}`;
}

function rankPart(rank: number): string {
  if (!Number.isSafeInteger(rank) || rank < 0 || rank > maxRank)
    throw new CubeError('INVALID_VALUE', `rank ${rank} is not an integer in 0..${maxRank}`, {
      where: { field: 'rank', rank },
    });
  return `rank-${String(rank).padStart(5, '0')}`;
}

/** The step number a step directory's name encodes, or null for any other name. */
export function parseStepDirName(name: string): number | null {
  const m = stepDirPattern.exec(name);
  return m === null ? null : Number(m[1]);
}

/** The rank a record's file name encodes (`rank-00003.json` → 3), or null. */
export function parseRecordName(name: string): number | null {
  const m = recordPattern.exec(name);
  return m === null ? null : Number(m[1]);
}

/** The rank a shard's file name encodes (`rank-00003.safetensors` → 3), or null. */
export function parseShardName(name: string): number | null {
  const m = shardPattern.exec(name);
  return m === null ? null : Number(m[1]);
}

/** Throws INVALID_VALUE unless `job` is a valid job id. */
export function checkJobId(job: string): string {
  const parsed = jobIdSchema.safeParse(job);
  if (!parsed.success)
    throw new CubeError(
      'INVALID_VALUE',
      `"${job}" is not a job id: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
      { where: { field: 'job' } },
    );
  return job;
}

/** `<job>/` */
export function jobPrefix(job: string): string {
  return `${checkJobId(job)}/`;
}

/** `<job>/step-S/` */
export function stepPrefix(job: string, step: number): string {
  return `${jobPrefix(job)}${stepDirName(step)}/`;
}

/** `<job>/step-S/manifest.json` */
export function manifestKey(job: string, step: number): string {
  return `${stepPrefix(job, step)}${manifestName}`;
}

/** `<job>/step-S/rank-R.json` */
export function recordKey(job: string, step: number, rank: number): string {
  return `${stepPrefix(job, step)}${rankPart(rank)}.json`;
}

/** The record's `file` of a shard kept in its step directory: `step-S/rank-R.safetensors`. */
export function shardFile(step: number, rank: number): string {
  return `${stepDirName(step)}/${rankPart(rank)}.safetensors`;
}

/** The record's `file` of an L1 slot: `slots/rank-R/slot-N.safetensors`. */
export function slotFile(rank: number, slot: number): string {
  if (!Number.isSafeInteger(slot) || slot < 0)
    throw new CubeError('INVALID_VALUE', `slot ${slot} is not a non-negative integer`, {
      where: { field: 'slot', rank },
    });
  return `slots/${rankPart(rank)}/slot-${slot}.safetensors`;
}

/** The key of a file named by a record or manifest (`file` is relative to `<root>/<job>/`). */
export function fileKey(job: string, file: string): string {
  return `${jobPrefix(job)}${file}`;
}

/** True when a record's `file` names an L1 slot (which GC never deletes). */
export function isSlotFile(file: string): boolean {
  return file.startsWith('slots/');
}
