/** Shared test helpers for the checkpoint engine: temp dirs, sample shards, the CLI. */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { pythonInterpreter } from '../../src/core/index.ts';
import {
  saveShard,
  tryCommit,
  type DurableStore,
  type Level,
  type LevelRoot,
  type ShardRecord,
  type TensorMap,
} from '../../src/ckpt/index.ts';
import { main } from '../../src/cli/main.ts';

export const repoRoot = new URL('../../', import.meta.url).pathname;

/** A fresh temp directory removed when the test file ends. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cube-ckpt-${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A small state whose values depend on rank and step, so shards differ. */
export function sampleTensors(step: number, rank: number): TensorMap {
  const weight = new Float32Array(64).map((_, i) => i * 0.5 + rank + step / 1000);
  return {
    'model/w': { shape: [8, 8], data: weight },
    'model/b': { dtype: 'BF16', shape: [3], data: new Uint16Array([0x3f80, 0x4000, rank]) },
    'optimizer/step': { shape: [], data: new BigInt64Array([BigInt(step)]) },
  };
}

/** Saves `ranks` of a step at a level root, then (unless told not to) commits it. */
export async function writeStep(
  root: LevelRoot,
  job: string,
  step: number,
  options: {
    readonly worldSize: number;
    readonly ranks?: readonly number[];
    readonly level?: Level;
    readonly commit?: boolean;
    readonly node?: string;
    readonly slot?: number;
    /** Per rank (a function) or for all; default 0. */
    readonly timeline?: number | ((rank: number) => number);
  },
): Promise<ShardRecord[]> {
  const ranks = options.ranks ?? Array.from({ length: options.worldSize }, (_, r) => r);
  const records: ShardRecord[] = [];
  for (const rank of ranks)
    records.push(
      await saveShard(root, {
        job,
        step,
        rank,
        worldSize: options.worldSize,
        node: options.node ?? 'node-a',
        tensors: sampleTensors(step, rank),
        extra: { rng: { python: [rank, step] }, data: { position: step * 10 } },
        ...(options.slot === undefined ? {} : { slot: options.slot }),
        timeline:
          typeof options.timeline === 'function' ? options.timeline(rank) : (options.timeline ?? 0),
      }),
    );
  if (options.commit !== false) {
    const result = await tryCommit(root, job, step, {
      level: options.level ?? 'L3',
      expectRanks: ranks,
    });
    if (result.kind === 'incomplete') throw new Error(`commit failed: ${JSON.stringify(result)}`);
  }
  return records;
}

/** The project's interpreter (CUBE_PYTHON, else .venv/bin/python from scripts/setup.sh). */
export const python = pythonInterpreter();

/** Runs a Python script and parses its JSON output. */
export function runPython(args: readonly string[]): unknown {
  const r = spawnSync(python, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cube` as a child process, as a user would. */
export function cube(...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/cube.js', ...args],
      { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Wraps a store and logs every put and delete, in order, to check write and delete order. */
export function recordingStore(inner: DurableStore): { store: DurableStore; log: string[] } {
  const log: string[] = [];
  const store: DurableStore = {
    kind: inner.kind,
    locate: (key) => inner.locate(key),
    put: async (key, body, options) => {
      const result = await inner.put(key, body, options);
      log.push(`put ${key}`);
      return result;
    },
    get: (key, options) => inner.get(key, options),
    head: (key) => inner.head(key),
    list: (prefix, options) => inner.list(prefix, options),
    delete: async (key) => {
      log.push(`delete ${key}`);
      await inner.delete(key);
    },
    deletePrefix: async (prefix) => {
      log.push(`deletePrefix ${prefix}`);
      await inner.deletePrefix(prefix);
    },
    freeBytes: () => inner.freeBytes(),
  };
  return { store, log };
}

/** Flips one byte of a file (at `offset` from the end by default: inside the tensor data). */
export function flipByte(path: string, offsetFromEnd = 1): void {
  const bytes = readFileSync(path);
  const at = bytes.byteLength - offsetFromEnd;
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  writeFileSync(path, bytes);
}

/** Runs `cube` in this process (fast: no new Node and no recompiling) with captured output. */
export async function cubeInProcess(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const line = (s: string): string => (s.endsWith('\n') ? s : `${s}\n`);
  const code = await main(args, {
    out: (s) => (stdout += line(s)),
    err: (s) => (stderr += line(s)),
  });
  return { code, stdout, stderr };
}
