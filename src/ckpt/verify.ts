/** Checking shards against their records and manifests: size and XXH3-64, streaming. */
import { basename, dirname } from 'node:path';
import { CubeError } from '../core/index.ts';
import { asStore, FsDurableStore, type LevelRoot } from './fs-store.ts';
import type { DurableStore } from './l3-store.ts';
import { fileKey } from './layout.ts';
import { mapLimit } from './map-limit.ts';
import {
  listRecordRanks,
  readManifest,
  readRecord,
  stepStatus,
  type StepProblem,
  type StepState,
} from './scan.ts';
import type { Level } from './schemas.ts';
import { compareContent, createXxh3Hasher, type ExpectedContent } from './xxh3.ts';

interface VerifyOptions {
  readonly signal?: AbortSignal;
}

/** Streams an object through XXH3-64 and returns its size and digest. */
export async function hashObject(
  store: DurableStore,
  key: string,
  options: VerifyOptions = {},
): Promise<{ bytes: number; xxh3: string }> {
  const hasher = createXxh3Hasher();
  for await (const chunk of await store.get(key, { ...options, transient: true }))
    hasher.update(chunk);
  return { bytes: hasher.bytes, xxh3: hasher.hex() };
}

/** Streams a file through XXH3-64 and returns its size and digest. */
export async function hashFile(
  path: string,
  options: VerifyOptions = {},
): Promise<{ bytes: number; xxh3: string }> {
  return hashObject(new FsDurableStore(dirname(path)), basename(path), options);
}

/** The outcome of checking one object against the size and checksum it should have. */
export type ObjectCheck =
  | { readonly kind: 'ok'; readonly file: string; readonly bytes: number; readonly xxh3: string }
  | { readonly kind: 'missing'; readonly file: string; readonly message: string }
  | {
      readonly kind: 'size-mismatch';
      readonly file: string;
      readonly expectedBytes: number;
      readonly actualBytes: number;
      readonly message: string;
    }
  | {
      readonly kind: 'checksum-mismatch';
      readonly file: string;
      readonly expected: string;
      readonly actual: string;
      readonly message: string;
    }
  | { readonly kind: 'unreadable'; readonly file: string; readonly message: string };

/** An ObjectCheck of one rank's shard. */
export type ShardCheck = ObjectCheck & { readonly rank: number };

/**
 * Checks an object against `expected`: the size first (from a stat, no read), then the
 * XXH3-64 of a streaming read. Never throws for a bad object; an abort does throw.
 */
export async function verifyObject(
  store: DurableStore,
  key: string,
  expected: ExpectedContent,
  options: VerifyOptions = {},
): Promise<ObjectCheck> {
  const file = store.locate(key);
  try {
    const info = await store.head(key);
    if (info === null) return { kind: 'missing', file, message: `${file}: missing` };
    if (info.bytes !== expected.bytes)
      return {
        kind: 'size-mismatch',
        file,
        expectedBytes: expected.bytes,
        actualBytes: info.bytes,
        message: `${file}: ${info.bytes} bytes, expected ${expected.bytes}`,
      };
    const hasher = createXxh3Hasher();
    for await (const chunk of await store.get(key, { ...options, transient: true }))
      hasher.update(chunk);
    const check = compareContent(hasher, expected);
    switch (check.kind) {
      case 'ok':
        return { kind: 'ok', file, bytes: check.bytes, xxh3: check.xxh3 };
      case 'size-mismatch':
        // The file changed size while it was read.
        return {
          ...check,
          file,
          message: `${file}: read ${check.actualBytes} bytes, expected ${check.expectedBytes}`,
        };
      case 'checksum-mismatch':
        return {
          ...check,
          file,
          message: `${file}: xxh3 ${check.actual}, expected ${check.expected} (corrupt)`,
        };
      default:
        return check satisfies never;
    }
  } catch (error) {
    if (options.signal?.aborted === true) throw error;
    if (error instanceof CubeError && error.code === 'FILE_NOT_FOUND')
      return { kind: 'missing', file, message: `${file}: missing` };
    return { kind: 'unreadable', file, message: `${file}: ${(error as Error).message}` };
  }
}

/** Checks one rank's shard, as a record or manifest lists it, at a level root. */
export async function verifyShard(
  root: LevelRoot,
  job: string,
  shard: {
    readonly rank: number;
    readonly file: string;
    readonly bytes: number;
    readonly xxh3: string;
  },
  options: VerifyOptions = {},
): Promise<ShardCheck> {
  const check = await verifyObject(asStore(root), fileKey(job, shard.file), shard, options);
  return { ...check, rank: shard.rank };
}

/** The verification of every shard of one step at one level root. */
export interface StepVerification {
  readonly job: string;
  readonly step: number;
  readonly level: Level;
  readonly location: string;
  /**
   * The state the scan saw. For an `uncommitted` step the shards its records name are
   * checked against the records (a restore never uses it, but a later commit would).
   */
  readonly state: StepState;
  /** The step's timeline at this level (see `StepStatus.timeline`). */
  readonly timeline: number | null;
  /** True when the manifest is valid and every shard it lists checks out. */
  readonly ok: boolean;
  readonly shards: readonly ShardCheck[];
  /** Problems beyond single shards (an unreadable manifest, ranks missing at L3). */
  readonly problems: readonly StepProblem[];
}

/**
 * Verifies a step at a level root: reads the manifest (an invalid one fails the step, naming
 * the file) and hashes every shard it lists, a few at a time. A step without a manifest has
 * the shards its records name checked against those records.
 */
export async function verifyStep(
  root: LevelRoot,
  job: string,
  step: number,
  options: VerifyOptions & { readonly level: Level; readonly concurrency?: number },
): Promise<StepVerification> {
  const store = asStore(root);
  const status = await stepStatus(store, job, step, options);
  const base = {
    job,
    step,
    level: options.level,
    location: status.location,
    state: status.state,
    timeline: status.timeline,
  };
  if (status.state === 'uncommitted') {
    const records = await mapLimit(await listRecordRanks(store, job, step, options), 4, (rank) =>
      readRecord(store, job, step, rank, options),
    );
    const shards = await mapLimit(
      records.flatMap((r) => (r.kind === 'valid' ? [r.value] : [])),
      options.concurrency ?? 2,
      (record) => verifyShard(store, job, record, options),
    );
    const problems = status.problems.filter((p) => p.kind === 'record-invalid');
    return {
      ...base,
      ok: problems.length === 0 && shards.every((s) => s.kind === 'ok'),
      shards,
      problems,
    };
  }
  const read = await readManifest(store, job, step, options);
  if (read.kind !== 'valid') return { ...base, ok: false, shards: [], problems: status.problems };
  const shards = await mapLimit(read.value.shards, options.concurrency ?? 2, (shard) =>
    verifyShard(store, job, shard, options),
  );
  // Shard-level problems are restated by the checks; keep the others (e.g. ranks missing).
  const problems = status.problems.filter(
    (p) =>
      p.kind === 'ranks-missing' || p.kind === 'manifest-invalid' || p.kind === 'slot-overwritten',
  );
  return {
    ...base,
    ok: problems.length === 0 && shards.every((s) => s.kind === 'ok'),
    shards: [...shards].sort((a, b) => a.rank - b.rank),
    problems,
  };
}
