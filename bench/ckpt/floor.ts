// Physical floors of the checkpoint benchmarks' rows: a figure that beats what the machine can do
// (a save that blocks for less than a memcpy of the bytes it copies, measured in the same run) is
// not a result but a broken measurement, so the row becomes FLOOR and `bench:ckpt` fails naming it.
// Each floor is a baseline of the same run that does no more than the minimum work Cube's
// operation must also do, times NOISE_TOLERANCE (two medians of the same work on a shared VM
// differ by up to ~20%; beyond that the run's figures, not Cube, are what changed).
import type { Row } from './common.ts';

/** How far below its floor a figure may fall before the row is void (medians' noise). */
export const NOISE_TOLERANCE = 0.8;

/** One floor: which rows it applies to, and the least `cube / floor` (both times) can be. */
interface Floor {
  readonly bench: string;
  readonly metric: RegExp;
  /** Cube's time and the floor's time for this row, or null when the row lacks them. */
  readonly times: (values: Record<string, unknown>) => { cube: number; floor: number } | null;
  /** The least `cube / floor` that is physically possible (before the noise tolerance). */
  readonly least: number;
  /** Why Cube cannot do better than `least` x the floor. */
  readonly why: string;
}

/** A number, or the median of an array of numbers (throughput.ts keeps every repetition). */
function seconds(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (!Array.isArray(value) || value.length === 0) return null;
  if (!value.every((x): x is number => typeof x === 'number' && Number.isFinite(x))) return null;
  const sorted = [...value].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? null)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function pair(
  cubeKey: string,
  floorKey: string,
): (values: Record<string, unknown>) => { cube: number; floor: number } | null {
  return (values) => {
    const cube = seconds(values[cubeKey]);
    const floor = seconds(values[floorKey]);
    return cube === null || floor === null || floor <= 0 ? null : { cube, floor };
  };
}

const copy =
  'save() copies every byte of the state (one thread, as the raw copy: bench:ckpt sets ' +
  'OMP_NUM_THREADS=1), so it cannot block for less than a raw copy of the same bytes';

/** The floors, by row. Rows not listed here have none (see bench/ckpt/README.md, "Floors"). */
export const floors: readonly Floor[] = [
  {
    bench: 'stall',
    metric: /^save\(\) stall, steady/,
    times: pair('cube_s', 'raw_s'),
    least: 1,
    why: copy,
  },
  {
    bench: 'stall',
    metric: /^save\(\) stall vs the same raw copy into the slot/,
    times: pair('cube_s', 'slot_raw_s'),
    least: 1,
    why: `${copy} into the same tmpfs pages`,
  },
  {
    bench: 'stall',
    metric: /^save\(\) stall with node daemon/,
    times: pair('cube_s', 'raw_s'),
    least: 1,
    why: `${copy} (the lease round trip comes on top)`,
  },
  {
    bench: 'stall',
    metric: /^first save/,
    times: pair('first_s', 'raw_s'),
    least: 1,
    why: `${copy} (allocating the slot comes on top)`,
  },
  {
    bench: 'stall',
    metric: /^second save/,
    times: pair('second_s', 'raw_s'),
    least: 1,
    why: `${copy} (allocating the slot comes on top)`,
  },
  {
    bench: 'stall-cuda',
    metric: /^save\(\) stall vs raw copy to pinned memory/,
    times: pair('cube_s', 'raw_s'),
    least: 1,
    why: 'save() copies every byte from the device to host memory, so it cannot block for less than a raw device-to-host copy into pinned memory',
  },
  {
    bench: 'throughput',
    metric: /^L3 persist/,
    times: pair('persist_s', 'dd_s'),
    // dd writes into the page cache, then waits for one fsync; persistStep flushes every 64 MiB
    // while it writes, so at best it hides the shorter of the two phases behind the longer:
    // max(copy, flush) >= (copy + flush) / 2 of the same bytes to the same disk.
    least: 0.5,
    why: 'persistStep writes the same bytes to the same disk as dd conv=fsync; overlapping the flush with the copy can at most halve dd`s copy-then-fsync time',
  },
  {
    bench: 'throughput',
    metric: /^L2 replication -> peer daemon, replica on disk/,
    times: pair('cube_s', 'raw_s'),
    least: 0.5,
    why: 'the replica crosses the same loopback to the same disk as the raw stream, which fsyncs once at the end; overlapping the flush with the transfer can at most halve its time',
  },
  {
    bench: 'throughput',
    metric: /^L2 replication -> peer daemon, replica on tmpfs/,
    times: pair('cube_s', 'raw_s'),
    least: 1,
    why: 'the replica crosses the same loopback into tmpfs as the raw stream (no flush to overlap): it cannot arrive faster',
  },
  {
    bench: 'restore',
    metric: /^load_latest\(\) from L[13]/,
    times: pair('restore_s', 'plain_s'),
    least: 1,
    why: 'load_latest() reads every byte of the shard (and hashes it), so it cannot take less than a plain read of the same file',
  },
  {
    bench: 'slowdown',
    metric: /^step time while L2\/L3 run/,
    times: (v) => {
      const busy = seconds(v.busy_mean_s);
      const idleSteps = typeof v.idle_steps === 'number' ? v.idle_steps : 0;
      // slowdown.py compares with the idle steps of the same run when it has 5 of them.
      const ref = seconds(idleSteps >= 5 ? v.idle_mean_s : v.base_mean_s);
      return busy === null || ref === null || ref <= 0 ? null : { cube: busy, floor: ref };
    },
    least: 1,
    why: 'a step does the same work while the checkpoint runs beside it, and only loses CPU and memory bandwidth to it: it cannot be faster than an idle step',
  },
  {
    bench: 'slowdown',
    metric: /^whole run incl\. save\(\) stalls/,
    times: pair('wall_s', 'expected_s'),
    least: 1,
    why: 'the run does the same steps plus the save() stalls: it cannot take less than its steps at the idle step time',
  },
  {
    bench: 'peers',
    metric: /: figures$/,
    times: (v) => {
      const slowdown = seconds(v.slowdown);
      return slowdown === null ? null : { cube: slowdown, floor: 1 };
    },
    least: 1,
    why: 'a training step with a checkpoint in the background does the same work as an idle one and only loses CPU to it: busy / idle cannot be below 1',
  },
];

/**
 * Why `row` beats its physical floor (a sentence naming the figures), or null when it does not,
 * has no floor, or lacks the figures (a skipped or failed row).
 */
export function floorBroken(row: Row): string | null {
  for (const f of floors) {
    if (f.bench !== row.bench || !f.metric.test(row.metric)) continue;
    const t = f.times(row.values);
    if (t === null) return null;
    const ratio = t.cube / t.floor;
    if (ratio >= f.least * NOISE_TOLERANCE) return null;
    return (
      `${ratio.toFixed(2)}x its floor, below the ${(f.least * NOISE_TOLERANCE).toFixed(2)}x ` +
      `possible (${f.least}x less ${Math.round((1 - NOISE_TOLERANCE) * 100)}% for noise): ${f.why}`
    );
  }
  return null;
}

/** The row with result FLOOR and the reason first in its note when it beats its floor; else the row. */
export function applyFloor(row: Row): Row {
  const why = floorBroken(row);
  if (why === null) return row;
  return {
    ...row,
    result: 'FLOOR',
    note: `FLOOR (was ${row.result}): ${why}${row.note === '' ? '' : `; ${row.note}`}`,
  };
}
