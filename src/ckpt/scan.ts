/**
 * Reading what a level root holds: manifests and records (never trusted before they parse,
 * match their location and agree with the files), and the status of each step.
 */
import type { z } from 'zod';
import { asStore, type LevelRoot } from './fs-store.ts';
import { readText, type DurableStore } from './l3-store.ts';
import {
  fileKey,
  isSlotFile,
  manifestKey,
  parseRecordName,
  recordKey,
  stepPrefix,
} from './layout.ts';
import { listJobs, listSteps } from './level-root.ts';
import { readSafetensorsHeaderFrom } from './safetensors-read.ts';
import {
  manifestSchema,
  shardRecordSchema,
  type Level,
  type Manifest,
  type ShardRecord,
} from './schemas.ts';

interface ScanOptions {
  readonly signal?: AbortSignal;
}

/** A JSON file of the format, read and checked. `file` is its full location. */
export type JsonRead<T> =
  | { readonly kind: 'missing'; readonly file: string }
  | { readonly kind: 'invalid'; readonly file: string; readonly message: string }
  | { readonly kind: 'valid'; readonly file: string; readonly value: T };

function issuesText(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length === 0 ? '(top level)' : i.path.join('.')}: ${i.message}`)
    .join('; ');
}

async function readJson<S extends z.ZodType>(
  store: DurableStore,
  key: string,
  schema: S,
  what: string,
  options: ScanOptions,
): Promise<JsonRead<z.output<S>>> {
  const file = store.locate(key);
  let text: string | null;
  try {
    text = await readText(store, key, options);
  } catch (error) {
    return { kind: 'invalid', file, message: `${file}: cannot read: ${(error as Error).message}` };
  }
  if (text === null) return { kind: 'missing', file };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    return {
      kind: 'invalid',
      file,
      message: `${file}: ${what} is not valid JSON (truncated or corrupt): ${(cause as Error).message}`,
    };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    return {
      kind: 'invalid',
      file,
      message: `${file}: not a valid ${what}: ${issuesText(parsed.error)}`,
    };
  return { kind: 'valid', file, value: parsed.data };
}

function mismatch(
  file: string,
  what: string,
  checks: readonly (readonly [string, unknown, unknown])[],
): string | null {
  const wrong = checks.filter(([, found, want]) => found !== want);
  if (wrong.length === 0) return null;
  return `${file}: ${what} is in the wrong place: ${wrong.map(([field, found, want]) => `${field} is ${JSON.stringify(found)}, its location says ${JSON.stringify(want)}`).join('; ')}`;
}

/**
 * Reads `<job>/step-S/manifest.json`. Invalid when it is not JSON (a truncated write), does
 * not match the schema, or names another job, step or level than where it lies.
 */
export async function readManifest(
  root: LevelRoot,
  job: string,
  step: number,
  options: ScanOptions & { readonly level?: Level } = {},
): Promise<JsonRead<Manifest>> {
  const read = await readJson(
    asStore(root),
    manifestKey(job, step),
    manifestSchema,
    'manifest',
    options,
  );
  if (read.kind !== 'valid') return read;
  const wrong = mismatch(read.file, 'the manifest', [
    ['job', read.value.job, job],
    ['step', read.value.step, step],
    ...(options.level === undefined ? [] : [['level', read.value.level, options.level] as const]),
  ]);
  return wrong === null ? read : { kind: 'invalid', file: read.file, message: wrong };
}

/** Reads `<job>/step-S/rank-R.json`; invalid when it names another job, step or rank. */
export async function readRecord(
  root: LevelRoot,
  job: string,
  step: number,
  rank: number,
  options: ScanOptions = {},
): Promise<JsonRead<ShardRecord>> {
  const key = recordKey(job, step, rank);
  const read = await readJson(asStore(root), key, shardRecordSchema, 'shard record', options);
  if (read.kind !== 'valid') return read;
  const wrong = mismatch(read.file, 'the shard record', [
    ['job', read.value.job, job],
    ['step', read.value.step, step],
    ['rank', read.value.rank, rank],
  ]);
  return wrong === null ? read : { kind: 'invalid', file: read.file, message: wrong };
}

/** The ranks that have a record file in a step directory (records not yet read). */
export async function listRecordRanks(
  root: LevelRoot,
  job: string,
  step: number,
  options: ScanOptions = {},
): Promise<number[]> {
  const prefix = stepPrefix(job, step);
  const { objects } = await asStore(root).list(prefix, options);
  return objects
    .map((o) => parseRecordName(o.key.slice(prefix.length)))
    .filter((r): r is number => r !== null)
    .sort((a, b) => a - b);
}

/** Why a step at a level cannot be used, or why it is not whole. Every kind names the file. */
export type StepProblem =
  | { readonly kind: 'manifest-invalid'; readonly file: string; readonly message: string }
  | {
      readonly kind: 'shard-missing';
      readonly file: string;
      readonly rank: number;
      readonly message: string;
    }
  | {
      readonly kind: 'size-mismatch';
      readonly file: string;
      readonly rank: number;
      readonly expectedBytes: number;
      readonly actualBytes: number;
      readonly message: string;
    }
  | {
      readonly kind: 'slot-overwritten';
      readonly file: string;
      readonly rank: number;
      readonly message: string;
    }
  | {
      readonly kind: 'ranks-missing';
      readonly file: string;
      readonly ranks: readonly number[];
      readonly message: string;
    }
  | {
      readonly kind: 'record-invalid';
      readonly file: string;
      readonly rank: number;
      readonly message: string;
    }
  | {
      /** Records of one step from two timelines: they must never be combined into a manifest. */
      readonly kind: 'timelines-mixed';
      readonly file: string;
      readonly timelines: readonly number[];
      readonly message: string;
    };

/**
 * - `complete`: a valid manifest listing every rank, each file present with its size;
 * - `partial`: the same but listing some ranks (an L1 or L2 root holds one node's share);
 * - `uncommitted`: no manifest (being written, or abandoned): never restored from;
 * - `invalid`: a manifest that cannot be trusted (see `problems`).
 */
export type StepState = 'complete' | 'partial' | 'uncommitted' | 'invalid';

/** A shard a step status counts as present. */
export interface StepShard {
  readonly rank: number;
  readonly file: string;
  readonly bytes: number;
}

/** What one level root holds of one step of one job. */
export interface StepStatus {
  readonly job: string;
  readonly step: number;
  readonly level: Level;
  /** The step directory's location (a path for a filesystem store). */
  readonly location: string;
  readonly state: StepState;
  /** `state === 'complete'`. */
  readonly complete: boolean;
  /** The world size the manifest (or the records) give; null when nothing says. */
  readonly worldSize: number | null;
  /**
   * The timeline the manifest gives, or, without one, the newest the records give; null when
   * nothing says (docs/checkpoint-format.md, "Timelines").
   */
  readonly timeline: number | null;
  /**
   * Ranks whose shard is here and matches: listed by the valid manifest, or, for an
   * uncommitted step, recorded with a file of the recorded size. Empty when invalid.
   */
  readonly ranks: readonly number[];
  /** The shards behind `ranks`: each one's file (relative to the job directory) and size. */
  readonly shards: readonly StepShard[];
  /** Total bytes of the shards in `ranks`. */
  readonly bytes: number;
  /** The manifest, only when it is valid (complete or partial). */
  readonly manifest: Manifest | null;
  readonly problems: readonly StepProblem[];
}

/** True when a step has a trusted manifest (complete, or partial at L1/L2). */
export function isCommitted(status: StepStatus): boolean {
  return status.state === 'complete' || status.state === 'partial';
}

async function checkShardFile(
  store: DurableStore,
  job: string,
  step: number,
  shard: { readonly rank: number; readonly file: string; readonly bytes: number },
  options: ScanOptions,
): Promise<StepProblem | null> {
  const key = fileKey(job, shard.file);
  const file = store.locate(key);
  const info = await store.head(key);
  if (info === null)
    return {
      kind: 'shard-missing',
      file,
      rank: shard.rank,
      message: `${file}: rank ${shard.rank}'s shard is missing`,
    };
  if (info.bytes !== shard.bytes)
    return {
      kind: 'size-mismatch',
      file,
      rank: shard.rank,
      expectedBytes: shard.bytes,
      actualBytes: info.bytes,
      message: `${file}: rank ${shard.rank}'s shard is ${info.bytes} bytes, the manifest or record says ${shard.bytes}`,
    };
  if (isSlotFile(shard.file)) {
    // A slot is reused by a later save: its header says which step it holds now.
    let holds: string | undefined;
    try {
      holds = (await readSafetensorsHeaderFrom(store, key, options)).metadata['cube.step'];
    } catch {
      holds = undefined;
    }
    if (holds !== String(step))
      return {
        kind: 'slot-overwritten',
        file,
        rank: shard.rank,
        message: `${file}: the slot no longer holds step ${step} (${holds === undefined ? 'its header is unreadable: being rewritten?' : `it holds step ${holds}`})`,
      };
  }
  return null;
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/**
 * The status of one step at one level root. A manifest is trusted only when it parses, lies
 * where it says, lists (at L3) every rank, and every listed file exists with the listed size
 * (at L1, the slot must still hold this step). Checksums are `verifyStep`'s job.
 */
export async function stepStatus(
  root: LevelRoot,
  job: string,
  step: number,
  options: ScanOptions & { readonly level: Level },
): Promise<StepStatus> {
  const store = asStore(root);
  const base = { job, step, level: options.level, location: store.locate(stepPrefix(job, step)) };
  const read = await readManifest(store, job, step, options);
  if (read.kind === 'invalid')
    return {
      ...base,
      state: 'invalid',
      complete: false,
      worldSize: null,
      timeline: null,
      ranks: [],
      shards: [],
      bytes: 0,
      manifest: null,
      problems: [{ kind: 'manifest-invalid', file: read.file, message: read.message }],
    };
  if (read.kind === 'valid') {
    const manifest = read.value;
    const problems: StepProblem[] = (
      await Promise.all(manifest.shards.map((s) => checkShardFile(store, job, step, s, options)))
    ).filter((p): p is StepProblem => p !== null);
    const listed = new Set(manifest.shards.map((s) => s.rank));
    const absent = Array.from({ length: manifest.worldSize }, (_, r) => r).filter(
      (r) => !listed.has(r),
    );
    if (options.level === 'L3' && absent.length > 0)
      problems.push({
        kind: 'ranks-missing',
        file: read.file,
        ranks: absent,
        message: `${read.file}: an L3 manifest must list every rank; ${absent.length} missing (${absent.slice(0, 8).join(', ')}${absent.length > 8 ? ', ...' : ''})`,
      });
    const ok = problems.length === 0;
    const shards = [...manifest.shards].sort((a, b) => a.rank - b.rank);
    return {
      ...base,
      state: !ok ? 'invalid' : absent.length === 0 ? 'complete' : 'partial',
      complete: ok && absent.length === 0,
      worldSize: manifest.worldSize,
      timeline: manifest.timeline,
      ranks: ok ? shards.map((s) => s.rank) : [],
      shards: ok ? shards.map(({ rank, file, bytes }) => ({ rank, file, bytes })) : [],
      bytes: ok ? sum(shards.map((s) => s.bytes)) : 0,
      manifest: ok ? manifest : null,
      problems,
    };
  }
  // No manifest: report what the records say is already durable here (in flight, or left over).
  const problems: StepProblem[] = [];
  const present: StepShard[] = [];
  const timelines = new Set<number>();
  let worldSize: number | null = null;
  for (const rank of await listRecordRanks(store, job, step, options)) {
    const record = await readRecord(store, job, step, rank, options);
    if (record.kind === 'missing') continue;
    if (record.kind === 'invalid') {
      problems.push({ kind: 'record-invalid', file: record.file, rank, message: record.message });
      continue;
    }
    worldSize ??= record.value.worldSize;
    timelines.add(record.value.timeline);
    const problem = await checkShardFile(store, job, step, record.value, options);
    if (problem === null)
      present.push({ rank, file: record.value.file, bytes: record.value.bytes });
    else problems.push(problem);
  }
  const seen = [...timelines].sort((a, b) => a - b);
  const mixed = seen.length > 1;
  if (mixed)
    problems.push({
      kind: 'timelines-mixed',
      file: base.location,
      timelines: seen,
      message: `${base.location}: the shard records come from timelines ${seen.join(', ')}; records of different timelines never make one checkpoint (a leftover of a run that restarted from an older step)`,
    });
  return {
    ...base,
    // Mixed records can never be committed as they are: the step is unusable, not in flight.
    state: mixed ? 'invalid' : 'uncommitted',
    complete: false,
    worldSize,
    timeline: seen.at(-1) ?? null,
    ranks: mixed ? [] : present.map((p) => p.rank),
    shards: mixed ? [] : present,
    bytes: mixed ? 0 : sum(present.map((p) => p.bytes)),
    manifest: null,
    problems,
  };
}

/** The status of every step of a job at a level root, oldest first. */
export async function scanJob(
  root: LevelRoot,
  job: string,
  options: ScanOptions & { readonly level: Level },
): Promise<StepStatus[]> {
  const store = asStore(root);
  const steps = await listSteps(store, job, options);
  return Promise.all(steps.map((step) => stepStatus(store, job, step, options)));
}

/** Everything a level root holds: each job's steps with their status. */
export interface LevelRootScan {
  readonly level: Level;
  readonly location: string;
  readonly jobs: readonly { readonly job: string; readonly steps: readonly StepStatus[] }[];
}

/** Scans a level root: every job (or the ones named), every step. */
export async function scanLevelRoot(
  root: LevelRoot,
  options: ScanOptions & { readonly level: Level; readonly jobs?: readonly string[] },
): Promise<LevelRootScan> {
  const store = asStore(root);
  const jobs = options.jobs ?? (await listJobs(store, options));
  return {
    level: options.level,
    location: store.locate(''),
    jobs: await Promise.all(
      jobs.map(async (job) => ({ job, steps: await scanJob(store, job, options) })),
    ),
  };
}
