import { readdirSync, readFileSync } from 'node:fs';

/** True while `pid` runs (a zombie, exited but not yet reaped, is not running). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A rank process of a job, found by the environment its agent gave it. */
export interface RankProcess {
  readonly pid: number;
  readonly rank: number;
  readonly attempt: number;
  readonly node: string;
  /** CUBE_CKPT_L1 and CUBE_CKPT_L3: where this rank's checkpoints live. */
  readonly l1Root: string | null;
  readonly l3Root: string | null;
}

/**
 * The running processes of a job's ranks, read from /proc the way an operator would find
 * them: by the `CUBE_JOB_ID`, `RANK`, `CUBE_ATTEMPT` and `CUBE_NODE` an agent sets.
 */
export function findRankProcesses(jobId: string): RankProcess[] {
  const found: RankProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let env: Map<string, string>;
    try {
      env = new Map(
        readFileSync(`/proc/${entry}/environ`, 'utf8')
          .split('\0')
          .map((kv): [string, string] => {
            const eq = kv.indexOf('=');
            return [kv.slice(0, eq), kv.slice(eq + 1)];
          }),
      );
    } catch {
      continue; // gone, or not ours to read
    }
    if (env.get('CUBE_JOB_ID') !== jobId) continue;
    const pid = Number(entry);
    if (!processAlive(pid)) continue;
    // [H10] A warm interpreter waiting to become a rank's next attempt has the rank's
    // environment already but is not a rank yet (src/agent/warm-start.ts).
    if (isWaitingWarm(pid)) continue;
    found.push({
      pid,
      rank: Number(env.get('RANK') ?? -1),
      attempt: Number(env.get('CUBE_ATTEMPT') ?? -1),
      node: env.get('CUBE_NODE') ?? '',
      l1Root: env.get('CUBE_CKPT_L1') ?? null,
      l3Root: env.get('CUBE_CKPT_L3') ?? null,
    });
  }
  return found;
}

/** The processes of one rank of the newest attempt that has any running. */
export function rankProcesses(jobId: string, rank: number): RankProcess[] {
  const all = findRankProcesses(jobId).filter((p) => p.rank === rank);
  const newest = Math.max(-1, ...all.map((p) => p.attempt));
  return all.filter((p) => p.attempt === newest);
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** [H10] True for a warm interpreter that is not a rank yet (named cube-warm while it waits). */
function isWaitingWarm(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'cube-warm';
  } catch {
    return false;
  }
}
