import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { CubeError } from './cube-error.ts';

/** A CPU list read: its CPUs, or the first part that is not a CPU or an ascending range. */
type CpuListRead =
  | { readonly kind: 'cpus'; readonly cpus: number[] }
  | { readonly kind: 'not-a-cpu' | 'backwards'; readonly part: string };

/** Reads a CPU list (`3`, `2,5`, `0-3,8-11`) into sorted CPU numbers. */
function readCpuList(value: string): CpuListRead {
  const cpus = new Set<number>();
  for (const raw of value.split(',')) {
    const part = raw.trim();
    const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    if (match === null) return { kind: 'not-a-cpu', part };
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first) return { kind: 'backwards', part };
    for (let cpu = first; cpu <= last; cpu += 1) cpus.add(cpu);
  }
  return { kind: 'cpus', cpus: [...cpus].sort((x, y) => x - y) };
}

/**
 * CPU numbers from a Linux CPU list such as `3`, `2,5` or `0-3,8-11` (as `taskset -c` and
 * cpusets write them), sorted; `field` names the flag or option in errors. Numbers at or above
 * this machine's CPU count are refused.
 */
export function parseCpuList(value: string, field: string): number[] {
  const read = readCpuList(value);
  if (read.kind !== 'cpus')
    throw new CubeError(
      'BAD_FLAG',
      read.kind === 'backwards'
        ? `${field}: the range "${read.part}" in "${value}" is backwards`
        : `${field}: "${read.part}" in "${value}" is not a CPU number or range (e.g. 3 or 2-5)`,
      { where: { field } },
    );
  const present = availableParallelism();
  const missing = read.cpus.filter((cpu) => cpu >= present);
  if (missing.length > 0)
    throw new CubeError(
      'BAD_FLAG',
      `${field}: CPU ${missing[0]} does not exist (this machine has CPUs 0-${present - 1})`,
      { where: { field } },
    );
  return read.cpus;
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

/** The CPUs a thread may run on, as the kernel writes them in /proc (null when it has ended). */
function threadCpuList(pid: number, tid: number): string | null {
  try {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    return /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1] ?? null;
  } catch {
    return null;
  }
}

/** True when process `pid` has exited (gone, or a zombie not yet reaped). */
function ended(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}

/** The CPUs this process's calling thread may run on (from /proc; every CPU where there is none). */
export function allowedCpus(): number[] {
  try {
    const status = readFileSync('/proc/thread-self/status', 'utf8');
    const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
    const read = list === undefined ? null : readCpuList(list);
    if (read?.kind === 'cpus') return read.cpus;
  } catch {
    // not Linux
  }
  return [...Array(availableParallelism()).keys()];
}

/**
 * Keeps every thread of process `pid` on `cpus` and returns how many threads it set; threads
 * created later inherit their creator's CPUs. Node has no affinity call, so this runs
 * util-linux's `taskset -a -p`, repeating until every thread in /proc/<pid>/task has the CPUs,
 * so a thread started meanwhile is not missed. Linux only; `field` names the flag in errors.
 */
export function pinProcess(pid: number, cpus: readonly number[], field: string): number {
  const list = formatCpuList(cpus);
  for (let pass = 0; pass < 10; pass += 1) {
    try {
      execFileSync('taskset', ['-a', '-p', '-c', list, String(pid)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (cause) {
      if (ended(pid)) return 0;
      const error = cause as NodeJS.ErrnoException & { stderr?: Buffer };
      const missing = error.code === 'ENOENT';
      throw new CubeError(
        missing ? 'INFEASIBLE' : 'BAD_FLAG',
        missing
          ? `${field}: taskset (util-linux) is not installed`
          : `${field}: cannot keep process ${pid} on CPUs ${list}: ${error.stderr?.toString().trim() || error.message}`,
        {
          where: { field },
          hint: 'the CPUs must be online and inside the cpuset the process runs in',
          cause,
        },
      );
    }
    let tids: number[];
    try {
      tids = readdirSync(`/proc/${pid}/task`).map(Number);
    } catch {
      return 0; // the process has ended
    }
    if (tids.every((tid) => [list, null].includes(threadCpuList(pid, tid)))) return tids.length;
  }
  throw new CubeError('INTERNAL', `${field}: threads kept appearing while setting CPUs ${list}`, {
    where: { field },
  });
}
