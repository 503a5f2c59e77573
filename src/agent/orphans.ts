import { readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';

const recordSchema = z.object({
  jobId: z.string(),
  attempt: z.int(),
  rank: z.int(),
  pid: z.int().positive(),
  /** The process's start time in clock ticks since boot (/proc/PID/stat field 22). */
  startTicks: z.string().nullable(),
});
/** A rank process the agent started, as remembered in `<data-dir>/ranks.json`. */
export type RankRecord = z.infer<typeof recordSchema>;

/** The start time of a process (clock ticks since boot), or null when it is gone or unknown. */
export async function processStartTicks(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** Writes the live ranks to `path` (replacing it atomically). */
export async function saveRankRecords(path: string, records: readonly RankRecord[]): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, `${JSON.stringify(records)}\n`, { mode: 0o600 });
  await rename(temp, path);
}

/**
 * Kills (process group, SIGKILL) the ranks a previous agent on this node left running when it
 * died without stopping them, and returns them. A record is trusted only when the process with
 * that pid started at the recorded time (pids are reused).
 */
export async function reapOrphans(path: string): Promise<RankRecord[]> {
  let records: RankRecord[];
  try {
    records = z.array(recordSchema).parse(JSON.parse(await readFile(path, 'utf8')));
  } catch {
    return [];
  }
  const reaped: RankRecord[] = [];
  for (const record of records) {
    const ticks = await processStartTicks(record.pid);
    if (ticks === null || record.startTicks === null || ticks !== record.startTicks) continue;
    try {
      process.kill(-record.pid, 'SIGKILL');
      reaped.push(record);
    } catch {
      // Already gone, or not ours to kill.
    }
  }
  await saveRankRecords(path, []);
  return reaped;
}
