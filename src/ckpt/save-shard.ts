/** Writing one rank's shard and then its record, as the format prescribes. */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { z } from 'zod';
import { CubeError } from '../core/index.ts';
import { asStore, FsDurableStore, type LevelRoot } from './fs-store.ts';
import type { DurableStore } from './l3-store.ts';
import { fileKey, recordKey, shardFile, slotFile } from './layout.ts';
import type { TensorMap } from './safetensors-header.ts';
import { putSafetensors, writeSafetensorsInPlace } from './safetensors-write.ts';
import { shardRecordSchema, type extraSchema, type ShardRecord } from './schemas.ts';
import { storageError } from './storage-error.ts';

/** Writes a shard record atomically (after its shard is durable: the caller's duty). */
export async function putRecord(
  root: LevelRoot,
  record: ShardRecord,
  options: { readonly signal?: AbortSignal } = {},
): Promise<string> {
  const store = asStore(root);
  const checked = shardRecordSchema.parse(record);
  const key = recordKey(checked.job, checked.step, checked.rank);
  await store.put(key, { kind: 'bytes', bytes: `${JSON.stringify(checked, null, 2)}\n` }, options);
  return store.locate(key);
}

export interface SaveShardOptions {
  readonly job: string;
  readonly step: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly node: string;
  readonly tensors: TensorMap;
  /** The rank's non-tensor state (opaque JSON). */
  readonly extra?: z.infer<typeof extraSchema>;
  /** L1: write into `slots/rank-R/slot-N.safetensors` in place instead of the step directory. */
  readonly slot?: number;
  /** The run's timeline (default 0; see docs/checkpoint-format.md, "Timelines"). */
  readonly timeline?: number;
  readonly now?: () => Date;
  readonly signal?: AbortSignal;
}

/**
 * Saves one rank's shard at a level root: the safetensors file (atomically in the step
 * directory, or in place in an L1 slot), then the record naming it, with its size and
 * XXH3-64 computed while writing. Returns the record. Does not commit: see `tryCommit`.
 */
export async function saveShard(root: LevelRoot, options: SaveShardOptions): Promise<ShardRecord> {
  const store: DurableStore = asStore(root);
  const { job, step, rank } = options;
  const file = options.slot === undefined ? shardFile(step, rank) : slotFile(rank, options.slot);
  const key = fileKey(job, file);
  const write = {
    metadata: {
      format: 'pt',
      'cube.job': job,
      'cube.step': String(step),
      'cube.rank': String(rank),
    },
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
  let written;
  if (options.slot === undefined)
    written = await putSafetensors(store, key, options.tensors, write);
  else {
    if (!(store instanceof FsDurableStore))
      throw new CubeError('INVALID_VALUE', 'L1 slots live on a filesystem store only', {
        where: { field: 'slot', rank },
      });
    const path = store.pathOf(key);
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw storageError('create the directory for', path, cause);
    }
    written = await writeSafetensorsInPlace(path, options.tensors, write);
  }
  const record: ShardRecord = shardRecordSchema.parse({
    format: 'cube.shard/1',
    job,
    step,
    rank,
    worldSize: options.worldSize,
    file,
    bytes: written.bytes,
    xxh3: written.xxh3,
    node: options.node,
    savedAt: (options.now ?? (() => new Date()))().toISOString(),
    timeline: options.timeline ?? 0,
    extra: options.extra ?? {},
  });
  await putRecord(store, record, options.signal === undefined ? {} : { signal: options.signal });
  return record;
}
