// Shared pieces of the TypeScript checkpoint benchmarks: sizes, the results table (the same
// columns and JSON rows as bench/ckpt/common.py), memory checks and child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync, statfsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pythonInterpreter } from '../../src/core/index.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The project's interpreter (CUBE_PYTHON, else .venv/bin/python from scripts/setup.sh). */
export const python = pythonInterpreter();
export const MIB = 1 << 20;
export const GIB = 1 << 30;

/** One line of a results table (see Row in common.py). */
export interface Row {
  readonly bench: string;
  readonly config: string;
  readonly metric: string;
  readonly cube: string;
  readonly baseline: string;
  readonly ratio: number | null;
  readonly target: string;
  readonly result: string;
  readonly note: string;
  readonly values: Record<string, unknown>;
}

/** PASS/MISS for a ratio against `<= x` / `>= x`; `info` without a target. */
export function judge(ratio: number | null, target: string): string {
  const m = /^\s*(<=|>=)\s*([\d.]+)\s*$/.exec(target);
  if (m === null || ratio === null || Number.isNaN(ratio)) return 'info';
  const bound = Number(m[2]);
  return (m[1] === '<=' ? ratio <= bound : ratio >= bound) ? 'PASS' : 'MISS';
}

export function row(
  fields: Omit<Row, 'result' | 'note' | 'values'> & {
    result?: string;
    note?: string;
    values?: Record<string, unknown>;
  },
): Row {
  return {
    ...fields,
    result: fields.result ?? judge(fields.ratio, fields.target),
    note: fields.note ?? '',
    values: fields.values ?? {},
  };
}

export function skipRow(bench: string, config: string, why: string): Row {
  return row({
    bench,
    config,
    metric: '(skipped)',
    cube: '-',
    baseline: '-',
    ratio: null,
    target: '-',
    result: 'SKIP',
    note: why,
  });
}

/** Prints rows as an aligned table (the layout of common.py's print_table). */
export function printTable(rows: readonly Row[], title = ''): void {
  const head = [
    'bench',
    'configuration',
    'metric',
    'Cube',
    'baseline',
    'ratio',
    'target',
    'result',
  ];
  const cells = rows.map((r) => [
    r.bench,
    r.config,
    r.metric,
    r.cube,
    r.baseline,
    r.ratio === null || Number.isNaN(r.ratio) ? '-' : `${r.ratio.toFixed(2)}x`,
    r.target,
    r.result,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]): string =>
    c
      .map((x, i) => x.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const out: string[] = [];
  if (title !== '') out.push(`\n== ${title}`);
  out.push(line(head), line(widths.map((w) => '-'.repeat(w))));
  rows.forEach((r, i) => {
    out.push(line(cells[i] ?? []));
    if (r.note !== '') out.push(`    note: ${r.note}`);
  });
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Appends rows as JSON lines (what run.ts collects). */
export function writeRows(rows: readonly Row[], path: string | undefined): void {
  if (path === undefined) return;
  const load = loadavg()[0];
  appendFileSync(
    path,
    rows
      .map((r) => `${JSON.stringify({ ...r, values: { loadavg1: load, ...r.values } })}\n`)
      .join(''),
  );
}

/** Reads rows written by writeRows / common.py's write_rows (a line that does not parse is
 * reported as an ERROR row rather than losing the others). */
export function readRows(path: string): Row[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Row;
      } catch (error) {
        return row({
          bench: '?',
          config: '?',
          metric: '(unreadable row)',
          cube: '-',
          baseline: '-',
          ratio: null,
          target: '-',
          result: 'ERROR',
          note: `${String(error)}: ${l.slice(0, 200)}`,
        });
      }
    });
}

/** `256M`, `1G`, `4GiB`, or a byte count -> bytes. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  if (m === null) throw new Error(`not a size: "${text}" (use e.g. 256M, 1G, 4G)`);
  const unit = { '': 1, K: 1024, M: MIB, G: GIB, T: GIB * 1024 }[(m[2] ?? '').toUpperCase()] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

export function fmtSize(n: number): string {
  if (n >= GIB && n % GIB === 0) return `${n / GIB} GiB`;
  if (n >= GIB) return `${(n / GIB).toFixed(2)} GiB`;
  return `${Math.round(n / MIB)} MiB`;
}

export function configName(bytes: number, ranks: number): string {
  return `${fmtSize(bytes)} x ${ranks} rank${ranks > 1 ? 's' : ''}`;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** MB/s (10^6 bytes per second, as dd prints it). */
export function mbps(bytes: number, seconds: number): number {
  return bytes / seconds / 1e6;
}

export function memAvailable(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

export function fsFree(path: string): number {
  const s = statfsSync(path);
  return s.bavail * s.bsize;
}

/** null when the memory and tmpfs needed fit (tmpfs is RAM too), else why not. */
export function fits(ramBytes: number, shmBytes: number, shm: string): string | null {
  const avail = memAvailable();
  const free = fsFree(shm);
  if (ramBytes + shmBytes > 0.85 * avail)
    return `needs ~${fmtSize(ramBytes + shmBytes)} of memory (states, slots, buffers), ${fmtSize(avail)} available`;
  if (shmBytes > 0.9 * free)
    return `needs ~${fmtSize(shmBytes)} of tmpfs at ${shm}, ${fmtSize(free)} free`;
  return null;
}

/** Starts a child and resolves with its first stdout line that parses as JSON with `key`. */
export async function startWithJsonLine(
  command: string,
  args: readonly string[],
  key: string,
  log: (chunk: string) => void = () => undefined,
): Promise<{ child: ChildProcess; line: Record<string, unknown> }> {
  const child = spawn(command, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr = (stderr + c).slice(-4000);
    log(c);
  });
  let out = '';
  let found: Record<string, unknown> | null = null;
  // The daemon logs to stdout: keep reading it all its life so a full pipe never blocks it.
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    if (found !== null) return;
    out += c;
    for (const l of out.split('\n')) {
      if (!l.includes(`"${key}"`)) continue;
      try {
        found = JSON.parse(l) as Record<string, unknown>;
        child.emit('json-line');
        return;
      } catch {
        // a log line that mentions the key: keep reading
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null): void =>
      reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`));
    child.once('exit', onExit);
    child.once('json-line', () => {
      child.off('exit', onExit);
      resolve();
    });
  });
  return { child, line: found ?? {} };
}

export function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
