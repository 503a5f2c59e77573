/**
 * Copying a committed step from one level root to another (L1 → L3 persistence, a replica
 * into L2), verifying each shard while it streams, then committing at the target.
 */
import { CubeError } from '../core/index.ts';
import { contentMismatchOf } from './atomic-file.ts';
import { tryCommit, type CommitResult } from './commit.ts';
import { checkFence, isFenced } from './fence.ts';
import { asStore, type LevelRoot } from './fs-store.ts';
import { fileKey, recordKey, shardFile } from './layout.ts';
import { readRecord, stepStatus } from './scan.ts';
import type { Layout, Level, ShardRecord } from './schemas.ts';
import { putRecord } from './save-shard.ts';
import { verifyShard } from './verify.ts';

export interface PersistOptions {
  readonly from: Level;
  readonly to: Level;
  /** The ranks to copy (default: every rank the source manifest lists). */
  readonly ranks?: readonly number[];
  /** The ranks the target manifest must list (default: all at L3, else the copied ranks). */
  readonly expectRanks?: readonly number[];
  readonly layout?: Layout;
  readonly signal?: AbortSignal;
  /** Two buffers the source reads refill, kept by the caller across persists (see GetOptions). */
  readonly readBuffers?: readonly [Uint8Array, Uint8Array];
}

/** What one persist call did. */
export interface PersistResult {
  /** Ranks whose shard was copied by this call. */
  readonly copied: readonly number[];
  /** Ranks already present at the target with the same checksum (a resumed persist). */
  readonly skipped: readonly number[];
  readonly commit: CommitResult;
}

/**
 * Persists a committed step: for each rank, streams the shard into the target store with its
 * expected size and XXH3-64 (a corrupt source fails the put and leaves the target untouched),
 * writes the record (its `file` now `step-S/rank-R.safetensors`), then tries to commit the
 * target: the manifest appears once every expected rank is there, whichever node copies last.
 * Throws INFEASIBLE when the source step is not committed, CORRUPT_DATA when a shard fails
 * verification, INFEASIBLE (`isFenced`) when the step's timeline is fenced at the target
 * (fence.ts): then nothing is written, or what this call wrote is removed again.
 */
export async function persistStep(
  source: LevelRoot,
  target: LevelRoot,
  job: string,
  step: number,
  options: PersistOptions,
): Promise<PersistResult> {
  const src = asStore(source);
  const dst = asStore(target);
  const signal = options.signal === undefined ? {} : { signal: options.signal };
  const status = await stepStatus(src, job, step, { level: options.from, ...signal });
  const manifest = status.manifest;
  if (manifest === null)
    throw new CubeError(
      'INFEASIBLE',
      `cannot persist step ${step} of ${job} from ${status.location}: it is ${status.state}${status.problems[0] === undefined ? '' : ` (${status.problems[0].message})`}`,
      { where: { file: status.location } },
    );
  // A fenced attempt writes nothing at L3: its shard files would replace the newer attempt's
  // of the same step (same names), not just fail to commit.
  if (options.to === 'L3') await checkFence(dst, job, step, manifest.timeline, signal);
  const wanted = options.ranks ?? manifest.shards.map((s) => s.rank);
  const copied: number[] = [];
  const skipped: number[] = [];
  for (const rank of wanted) {
    const shard = manifest.shards.find((s) => s.rank === rank);
    if (shard === undefined)
      throw new CubeError(
        'INVALID_VALUE',
        `rank ${rank} is not in the manifest of step ${step} at ${status.location}`,
        { where: { rank } },
      );
    const file = shardFile(step, rank);
    const existing = await readRecord(dst, job, step, rank, signal);
    if (
      existing.kind === 'valid' &&
      existing.value.xxh3 === shard.xxh3 &&
      existing.value.bytes === shard.bytes &&
      existing.value.timeline === manifest.timeline &&
      (await verifyShard(dst, job, existing.value, signal)).kind === 'ok'
    ) {
      skipped.push(rank);
      continue;
    }
    const from = fileKey(job, shard.file);
    try {
      await dst.put(
        fileKey(job, file),
        // put hashes and writes each chunk before it asks for the next: transient is safe.
        {
          kind: 'stream',
          stream: await src.get(from, {
            ...signal,
            transient: true,
            ...(options.readBuffers === undefined ? {} : { buffers: options.readBuffers }),
          }),
        },
        { expected: { bytes: shard.bytes, xxh3: shard.xxh3 }, ...signal },
      );
    } catch (error) {
      if (contentMismatchOf(error) !== undefined)
        throw new CubeError(
          'CORRUPT_DATA',
          `rank ${rank}'s shard ${src.locate(from)} does not match its manifest; not persisted`,
          { where: { file: src.locate(from), rank }, cause: error },
        );
      throw error;
    }
    const sourceRecord = await readRecord(src, job, step, rank, signal);
    const record: ShardRecord = {
      format: 'cube.shard/1',
      job,
      step,
      rank,
      worldSize: manifest.worldSize,
      file,
      bytes: shard.bytes,
      xxh3: shard.xxh3,
      node: shard.node,
      savedAt: sourceRecord.kind === 'valid' ? sourceRecord.value.savedAt : manifest.committedAt,
      timeline: manifest.timeline,
      extra: shard.extra,
    };
    await putRecord(dst, record, signal);
    copied.push(rank);
  }
  const expectRanks =
    options.expectRanks ??
    (options.to === 'L3' ? Array.from({ length: manifest.worldSize }, (_, r) => r) : wanted);
  let commit: CommitResult;
  try {
    commit = await tryCommit(dst, job, step, {
      level: options.to,
      expectRanks,
      layout: options.layout ?? manifest.layout,
      ...signal,
    });
    // Not committed yet: a fence raised while copying must still take back this call's
    // records, or they would keep the newer attempt's records of the step from committing.
    if (commit.kind === 'incomplete' && options.to === 'L3')
      await checkFence(dst, job, step, manifest.timeline, signal);
  } catch (error) {
    // Fenced while copying: take back what this call wrote, unless a newer attempt's record
    // has replaced it meanwhile.
    if (isFenced(error))
      for (const rank of copied) {
        const record = await readRecord(dst, job, step, rank);
        if (record.kind === 'valid' && record.value.timeline !== manifest.timeline) continue;
        await dst.delete(recordKey(job, step, rank));
        await dst.delete(fileKey(job, shardFile(step, rank)));
      }
    throw error;
  }
  return { copied, skipped, commit };
}
