// The rank processes of a test cluster, found the way an operator would: by the environment
// an agent gives each rank (CUBE_NODE, CUBE_JOB_ID), read from /proc.
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

/** The running processes whose environment names this node and job: the ranks its agent started. */
export function rankPids(node: string, job: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (
        env.includes(`CUBE_NODE=${node}`) &&
        env.includes(`CUBE_JOB_ID=${job}`) &&
        processAlive(Number(entry)) &&
        // A warm interpreter waiting to become a rank's next attempt is not a rank yet.
        readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'cube-warm'
      )
        pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Stops `pid` for `stoppedMs` of every `periodMs` (a throttled rank, for real) until the
 * returned function is called; that function ends the cycle and leaves the process running.
 */
export function dutyCycle(pid: number, stoppedMs: number, periodMs: number): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    try {
      while (running) {
        process.kill(pid, 'SIGSTOP');
        await pause(stoppedMs);
        process.kill(pid, 'SIGCONT');
        await pause(periodMs - stoppedMs);
      }
    } catch {
      // the process is gone (its gang was relaunched)
    }
  })();
  return async () => {
    running = false;
    await loop;
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  };
}
