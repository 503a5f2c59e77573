/**
 * Committing a step at a level: the manifest is written last, atomically, and only when every
 * expected rank's record exists and names a file of the recorded size.
 */
import { CubeError } from '../core/index.ts';
import { checkFence } from './fence.ts';
import { asStore, type LevelRoot } from './fs-store.ts';
import type { DurableStore } from './l3-store.ts';
import { fileKey, manifestKey, recordKey } from './layout.ts';
import { readManifest, readRecord } from './scan.ts';
import {
  manifestSchema,
  type Layout,
  type Level,
  type Manifest,
  type ManifestShard,
  type ShardRecord,
} from './schemas.ts';
import { verifyObject } from './verify.ts';

/**
 * The newest `savedAt` of the records, as written. A manifest's `committedAt` is this rather
 * than the clock, so every committer of the same set (ranks, daemons, the Python client)
 * writes byte-for-byte the same content.
 */
function newestSavedAt(records: readonly ShardRecord[]): string {
  let newest = records[0]?.savedAt ?? new Date(0).toISOString();
  for (const r of records) if (Date.parse(r.savedAt) > Date.parse(newest)) newest = r.savedAt;
  return newest;
}

/**
 * Builds the manifest of a step from its shard records (pure); `committedAt` is the newest
 * `savedAt` of the records. Throws INVALID_VALUE when the
 * records disagree on job, step or world size, or list a rank twice.
 */
export function buildManifest(
  records: readonly ShardRecord[],
  options: { readonly level: Level; readonly layout?: Layout },
): Manifest {
  const first = records[0];
  if (first === undefined)
    throw new CubeError('INVALID_VALUE', 'a manifest needs at least one shard record', {});
  const seen = new Set<number>();
  for (const r of records) {
    if (
      r.job !== first.job ||
      r.step !== first.step ||
      r.worldSize !== first.worldSize ||
      r.timeline !== first.timeline
    )
      throw new CubeError(
        'INVALID_VALUE',
        `shard records disagree: rank ${r.rank} says job ${r.job} step ${r.step} worldSize ${r.worldSize} timeline ${r.timeline}, rank ${first.rank} says job ${first.job} step ${first.step} worldSize ${first.worldSize} timeline ${first.timeline}`,
        { where: { rank: r.rank } },
      );
    if (seen.has(r.rank))
      throw new CubeError('INVALID_VALUE', `rank ${r.rank} has two shard records`, {
        where: { rank: r.rank },
      });
    seen.add(r.rank);
  }
  const shards: ManifestShard[] = [...records]
    .sort((a, b) => a.rank - b.rank)
    .map((r) => ({
      rank: r.rank,
      file: r.file,
      bytes: r.bytes,
      xxh3: r.xxh3,
      node: r.node,
      extra: r.extra,
    }));
  // Validate what we are about to publish with the same schema readers use.
  return manifestSchema.parse({
    format: 'cube.manifest/1',
    job: first.job,
    step: first.step,
    level: options.level,
    worldSize: first.worldSize,
    layout: options.layout ?? { tp: 1, pp: 1, dp: first.worldSize },
    timeline: first.timeline,
    shards,
    committedAt: newestSavedAt(records),
  });
}

/** Why a rank keeps a step from being committed. */
export type CommitGap =
  | { readonly kind: 'record-missing'; readonly rank: number; readonly file: string }
  | {
      readonly kind: 'record-invalid';
      readonly rank: number;
      readonly file: string;
      readonly message: string;
    }
  | { readonly kind: 'shard-missing'; readonly rank: number; readonly file: string }
  | {
      readonly kind: 'size-mismatch';
      readonly rank: number;
      readonly file: string;
      readonly expectedBytes: number;
      readonly actualBytes: number;
    }
  | {
      readonly kind: 'checksum-mismatch';
      readonly rank: number;
      readonly file: string;
      readonly message: string;
    }
  | {
      /** Records of two timelines (an abandoned run's and the current one's) never combine. */
      readonly kind: 'timeline-mismatch';
      readonly rank: number;
      readonly file: string;
      readonly timeline: number;
      readonly expected: number;
    }
  | {
      readonly kind: 'world-size-mismatch';
      readonly rank: number;
      readonly file: string;
      readonly worldSize: number;
      readonly expected: number;
    };

export type CommitResult =
  /** This call wrote the manifest. */
  | { readonly kind: 'committed'; readonly file: string; readonly manifest: Manifest }
  /** A valid manifest with the same shards was already there; nothing was written. */
  | { readonly kind: 'already-committed'; readonly file: string; readonly manifest: Manifest }
  /** Not every expected rank is durable yet; no manifest was written. */
  | { readonly kind: 'incomplete'; readonly gaps: readonly CommitGap[] };

export interface CommitOptions {
  readonly level: Level;
  /** The ranks this manifest must list: all ranks at L3; a node's (or a replica set's) at L1/L2. */
  readonly expectRanks: readonly number[];
  /** Default `{tp: 1, pp: 1, dp: worldSize}`. */
  readonly layout?: Layout;
  /** Hash every shard before committing (the records' sizes are always checked). */
  readonly verifyChecksums?: boolean;
  readonly signal?: AbortSignal;
}

function sameShards(a: Manifest, b: Manifest): boolean {
  const key = (m: Manifest): string =>
    JSON.stringify([
      m.worldSize,
      m.level,
      m.timeline,
      m.shards.map((s) => [s.rank, s.file, s.bytes, s.xxh3, s.node]),
    ]);
  return key(a) === key(b);
}

function checkExpectRanks(ranks: readonly number[]): void {
  if (ranks.length === 0)
    throw new CubeError(
      'INVALID_VALUE',
      'expectRanks is empty: a manifest lists at least one rank',
      {
        where: { field: 'expectRanks' },
      },
    );
  if (new Set(ranks).size !== ranks.length)
    throw new CubeError('INVALID_VALUE', `expectRanks lists a rank twice: ${ranks.join(', ')}`, {
      where: { field: 'expectRanks' },
    });
}

async function gapOf(
  store: DurableStore,
  job: string,
  step: number,
  rank: number,
  options: CommitOptions,
): Promise<{ record: ShardRecord } | { gap: CommitGap }> {
  const read = await readRecord(store, job, step, rank, options);
  if (read.kind === 'missing') return { gap: { kind: 'record-missing', rank, file: read.file } };
  if (read.kind === 'invalid')
    return { gap: { kind: 'record-invalid', rank, file: read.file, message: read.message } };
  const record = read.value;
  const key = fileKey(job, record.file);
  const info = await store.head(key);
  if (info === null) return { gap: { kind: 'shard-missing', rank, file: store.locate(key) } };
  if (info.bytes !== record.bytes)
    return {
      gap: {
        kind: 'size-mismatch',
        rank,
        file: store.locate(key),
        expectedBytes: record.bytes,
        actualBytes: info.bytes,
      },
    };
  if (options.verifyChecksums === true) {
    const check = await verifyObject(store, key, record, options);
    if (check.kind !== 'ok')
      return {
        gap: { kind: 'checksum-mismatch', rank, file: store.locate(key), message: check.message },
      };
  }
  return { record };
}

/**
 * Commits `step` at a level root when it is complete: every rank of `expectRanks` has a valid
 * record whose file exists with the recorded size (and checksum, with `verifyChecksums`).
 * Then the manifest is written atomically, as the last file of the step. Otherwise nothing is
 * written and the gaps are returned.
 *
 * At L3, a step whose timeline is below the job's fence (fence.ts) is refused (INFEASIBLE,
 * `isFenced`).
 *
 * Idempotent and safe under concurrent callers (ranks, the daemon): a valid manifest with the
 * same shards is left alone; callers that race each write the same complete manifest (its
 * `committedAt` comes from the records, not the clock) through their own temp file and
 * rename, so whichever rename lands last, readers see one whole, identical manifest.
 */
export async function tryCommit(
  root: LevelRoot,
  job: string,
  step: number,
  options: CommitOptions,
): Promise<CommitResult> {
  const store = asStore(root);
  checkExpectRanks(options.expectRanks);
  const results = await Promise.all(
    options.expectRanks.map((rank) => gapOf(store, job, step, rank, options)),
  );
  const gaps: CommitGap[] = [];
  const records: ShardRecord[] = [];
  for (const r of results) {
    if ('gap' in r) gaps.push(r.gap);
    else records.push(r.record);
  }
  const worldSize = records[0]?.worldSize;
  if (worldSize !== undefined)
    for (const r of records)
      if (r.worldSize !== worldSize)
        gaps.push({
          kind: 'world-size-mismatch',
          rank: r.rank,
          file: store.locate(fileKey(job, r.file)),
          worldSize: r.worldSize,
          expected: worldSize,
        });
  // The newest timeline among the records is the live run's; an older one is a leftover of a
  // run that restarted from an earlier step, and must not complete the step.
  const timeline = records.reduce((t, r) => Math.max(t, r.timeline), 0);
  for (const r of records)
    if (r.timeline !== timeline)
      gaps.push({
        kind: 'timeline-mismatch',
        rank: r.rank,
        file: store.locate(recordKey(job, step, r.rank)),
        timeline: r.timeline,
        expected: timeline,
      });
  if (gaps.length > 0) return { kind: 'incomplete', gaps: gaps.sort((a, b) => a.rank - b.rank) };
  if (options.level === 'L3' && worldSize !== undefined && records.length !== worldSize)
    throw new CubeError(
      'INVALID_VALUE',
      `an L3 manifest lists every rank: expectRanks has ${records.length}, the world size is ${worldSize}`,
      { where: { field: 'expectRanks' } },
    );

  const manifest = buildManifest(records, {
    level: options.level,
    ...(options.layout === undefined ? {} : { layout: options.layout }),
  });
  // Fencing: once a newer attempt was launched, an older one's ranks (a partitioned node that
  // kept running) commit nothing more at L3, where every later attempt restores from.
  if (options.level === 'L3') await checkFence(store, job, step, manifest.timeline, options);
  const key = manifestKey(job, step);
  const existing = await readManifest(store, job, step, options);
  if (existing.kind === 'valid' && sameShards(existing.value, manifest))
    return { kind: 'already-committed', file: existing.file, manifest: existing.value };
  options.signal?.throwIfAborted();
  await store.put(
    key,
    { kind: 'bytes', bytes: `${JSON.stringify(manifest, null, 2)}\n` },
    options.signal === undefined ? {} : { signal: options.signal },
  );
  return { kind: 'committed', file: store.locate(key), manifest };
}
