// Launches examples/gpt/train.py as real rank processes with torch's environment contract and
// Cube's checkpoint variables, optionally SIGKILLing every rank once rank 0 logged a given step.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pythonInterpreter } from '../../src/core/index.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The project's interpreter (CUBE_PYTHON, else .venv/bin/python from scripts/setup.sh). */
export const python = pythonInterpreter();

/** The example trainer's tiny model (2 layers x 64 hidden, sequence 32, batch 4 per rank). */
export const tinyModelArgs: readonly string[] = [
  '--layers',
  '2',
  '--hidden',
  '64',
  '--heads',
  '2',
  '--seq-len',
  '32',
  '--batch',
  '4',
];
const trainer = join(repoRoot, 'examples/gpt/train.py');

export interface Levels {
  readonly l1: string;
  readonly l3: string;
  cleanup(): void;
}

/** A fresh L1 root on tmpfs (/dev/shm) and an L3 root on disk. */
export function makeLevels(tag: string): Levels {
  const l1 = mkdtempSync(join('/dev/shm', `cube-e2e-${tag}-`));
  const l3 = mkdtempSync(join(tmpdir(), `cube-e2e-${tag}-l3-`));
  return {
    l1,
    l3,
    cleanup: () => {
      rmSync(l1, { recursive: true, force: true });
      rmSync(l3, { recursive: true, force: true });
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface TrainRun {
  readonly job: string;
  readonly ranks: number;
  readonly levels: Levels;
  readonly lossLog: string;
  readonly args: readonly string[];
  /** SIGKILL every rank as soon as rank 0 has logged this step. */
  readonly killAtStep?: number;
  readonly timeoutMs?: number;
  /** Per-rank overrides of the environment (node, daemon socket, L1 root, local ranks). */
  readonly rankEnv?: (rank: number) => Readonly<Record<string, string>>;
  /** Another interpreter and trainer (the DCP example runs on CUBE_PYTHON's torch 2.x). */
  readonly python?: string;
  readonly trainer?: string;
}

export interface RunResult {
  readonly codes: (number | null)[];
  readonly signals: (NodeJS.Signals | null)[];
  readonly killed: boolean;
  /** The last step rank 0 printed. */
  readonly lastStep: number;
  readonly stdout: string[];
  readonly stderr: string[];
}

export async function runTrainer(run: TrainRun): Promise<RunResult> {
  const port = String(await freePort());
  const procs: ChildProcess[] = [];
  const stdout: string[] = Array.from({ length: run.ranks }, () => '');
  const stderr: string[] = Array.from({ length: run.ranks }, () => '');
  let killed = false;
  let lastStep = 0;
  const killAll = (): void => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  };
  const exits = [];
  for (let rank = 0; rank < run.ranks; rank++) {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PYTHONDONTWRITEBYTECODE: '1',
      OMP_NUM_THREADS: '1',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: port,
      RANK: String(rank),
      WORLD_SIZE: String(run.ranks),
      LOCAL_RANK: String(rank),
      LOCAL_WORLD_SIZE: String(run.ranks),
      CUBE_JOB_ID: run.job,
      CUBE_NODE: 'node-a',
      CUBE_CKPT_L1: run.levels.l1,
      CUBE_CKPT_L3: run.levels.l3,
    };
    delete env.CUBE_CKPT_SOCKET;
    Object.assign(env, run.rankEnv?.(rank) ?? {});
    const p = spawn(
      run.python ?? python,
      [run.trainer ?? trainer, ...run.args, '--loss-log', run.lossLog],
      {
        cwd: repoRoot,
        env,
      },
    );
    procs.push(p);
    p.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr[rank] += chunk));
    let partial = '';
    p.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout[rank] += chunk;
      if (rank !== 0) return;
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^step (\d+) loss /.exec(line);
        if (!m) continue;
        lastStep = Number(m[1]);
        if (run.killAtStep !== undefined && lastStep >= run.killAtStep && !killed) {
          killed = true;
          killAll();
        }
      }
    });
    exits.push(
      new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
        p.on('close', (code, signal) => resolve([code, signal])),
      ),
    );
  }
  const timer = setTimeout(killAll, run.timeoutMs ?? 120_000);
  try {
    const results = await Promise.all(exits);
    return {
      codes: results.map((r) => r[0]),
      signals: results.map((r) => r[1]),
      killed,
      lastStep,
      stdout,
      stderr,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** step -> the last loss (hex) logged for it. */
export function lossesByStep(lossLog: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of readFileSync(lossLog, 'utf8').split('\n')) {
    const m = /^step (\d+) loss (\S+)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) out.set(Number(m[1]), m[2]);
  }
  return out;
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), so kill points are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
