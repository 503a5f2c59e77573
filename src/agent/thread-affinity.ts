import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { CubeError } from '../core/index.ts';

/**
 * CPU numbers from a Linux CPU list such as `3`, `2,5` or `0-3,8-11` (as `taskset -c` and
 * cpusets write them), sorted; `field` names the flag or option in errors. Numbers at or above
 * this machine's CPU count are refused.
 */
export function parseCpuList(value: string, field: string): number[] {
  const cpus = new Set<number>();
  for (const raw of value.split(',')) {
    const part = raw.trim();
    const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    if (match === null)
      throw new CubeError(
        'BAD_FLAG',
        `${field}: "${part}" in "${value}" is not a CPU number or range (e.g. 3 or 2-5)`,
        { where: { field } },
      );
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first)
      throw new CubeError('BAD_FLAG', `${field}: the range "${part}" in "${value}" is backwards`, {
        where: { field },
      });
    for (let cpu = first; cpu <= last; cpu += 1) cpus.add(cpu);
  }
  const present = availableParallelism();
  const missing = [...cpus].filter((cpu) => cpu >= present).sort((a, b) => a - b);
  if (missing.length > 0)
    throw new CubeError(
      'BAD_FLAG',
      `${field}: CPU ${missing[0]} does not exist (this machine has CPUs 0-${present - 1})`,
      { where: { field } },
    );
  return [...cpus].sort((a, b) => a - b);
}

/** A CPU list in its short form (`0-3,8`), as the kernel and `taskset -c` write it. */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j += 1;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** The CPUs a thread of this process may run on, from /proc (null when it has ended). */
function threadCpus(tid: number): string | null {
  try {
    const status = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
    return /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * Keeps every thread of this process (V8's, libuv's file-I/O pool) on `cpus`, the node's
 * housekeeping cores, and returns how many threads it set. Node has no affinity call, so this
 * runs util-linux's `taskset -a -p` on its own pid; threads created later inherit their
 * creator's CPUs. Repeats until every thread in /proc/self/task has them, so a thread started
 * meanwhile is not missed. Linux only.
 */
export function pinEveryThread(cpus: readonly number[], field = '--cpus'): number {
  const list = formatCpuList(cpus);
  for (let pass = 0; pass < 10; pass += 1) {
    try {
      execFileSync('taskset', ['-a', '-p', '-c', list, String(process.pid)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (cause) {
      const error = cause as NodeJS.ErrnoException & { stderr?: Buffer };
      throw new CubeError(
        error.code === 'ENOENT' ? 'INFEASIBLE' : 'BAD_FLAG',
        error.code === 'ENOENT'
          ? `${field}: taskset (util-linux) is not installed`
          : `${field}: cannot keep this process on CPUs ${list}: ${error.stderr?.toString().trim() || error.message}`,
        {
          where: { field },
          hint: 'the CPUs must be online and inside the cpuset this process runs in',
          cause,
        },
      );
    }
    const tids = readdirSync('/proc/self/task').map(Number);
    if (tids.every((tid) => [list, null].includes(threadCpus(tid)))) return tids.length;
  }
  throw new CubeError('INTERNAL', `${field}: threads kept appearing while setting CPUs ${list}`, {
    where: { field },
  });
}
