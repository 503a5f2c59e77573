import { useMemo } from 'react';
import type { CheckpointEntry, CheckpointLevel } from '../api/types.ts';
import { Empty } from '../components/states.tsx';
import { clock, duration } from '../format.ts';

const levels: readonly CheckpointLevel[] = ['L1', 'L2', 'L3'];
const levelNames: Record<CheckpointLevel, string> = {
  L1: 'L1 node memory',
  L2: 'L2 peer replica',
  L3: 'L3 durable storage',
};

/** One mark on a level's row: a single commit, or a bucket of commits that would overlap. */
export interface TimelineMark {
  readonly x: number;
  readonly count: number;
  readonly firstStep: number;
  readonly lastStep: number;
  readonly firstAt: number;
  readonly lastAt: number;
}

/** Drawing units (the SVG scales to its panel). */
const width = 900;
const left = 130;
const right = 20;
const rowHeight = 36;
/** Single commits closer than this would overlap (circles of radius 5). */
const minSpacing = 12;
/** A bucket's width when commits are bucketed: 50 buckets across the axis. */
const bucketWidth = 15;

/**
 * The marks of one level's commits (sorted by time) at positions `x(at)`: one per commit when
 * no two would overlap; otherwise one per fixed-width bucket of the axis holding any, with its
 * count, so a thousand commits are at most 50 marks that never touch.
 */
export function timelineMarks(
  commits: readonly CheckpointEntry[],
  x: (at: number) => number,
): { readonly bucketed: boolean; readonly marks: readonly TimelineMark[] } {
  const single = (c: CheckpointEntry): TimelineMark => ({
    x: x(c.at),
    count: 1,
    firstStep: c.step,
    lastStep: c.step,
    firstAt: c.at,
    lastAt: c.at,
  });
  const spaced = commits.every((c, i) => {
    const previous = commits[i - 1];
    return previous === undefined || x(c.at) - x(previous.at) >= minSpacing;
  });
  if (spaced) return { bucketed: false, marks: commits.map(single) };
  const buckets = Math.floor((width - left - right) / bucketWidth);
  const byBucket = new Map<number, TimelineMark>();
  for (const c of commits) {
    const i = Math.min(buckets - 1, Math.max(0, Math.floor((x(c.at) - left) / bucketWidth)));
    const known = byBucket.get(i);
    byBucket.set(
      i,
      known === undefined
        ? { ...single(c), x: left + (i + 0.5) * bucketWidth }
        : {
            ...known,
            count: known.count + 1,
            firstStep: Math.min(known.firstStep, c.step),
            lastStep: Math.max(known.lastStep, c.step),
            lastAt: Math.max(known.lastAt, c.at),
          },
    );
  }
  return { bucketed: true, marks: [...byBucket.values()].sort((a, b) => a.x - b.x) };
}

function markTitle(m: TimelineMark, level: CheckpointLevel): string {
  return m.count === 1
    ? `step ${m.firstStep} committed at ${level}, ${clock(m.firstAt)}`
    : `${m.count} commits at ${level}, steps ${m.firstStep}–${m.lastStep}, ` +
        `${clock(m.firstAt)} – ${clock(m.lastAt)}`;
}

/**
 * When each checkpointed step committed at each level: one row per level on a shared time
 * axis (a mark per commit, or, once commits would overlap, a bar per bucket of the axis whose
 * height and tooltip give its count), steps labelled where there is room; then the newest
 * steps with how long L2 and L3 took after L1.
 */
export function CheckpointTimeline(props: { checkpoints: readonly CheckpointEntry[] }) {
  const { checkpoints } = props;
  const steps = useMemo(() => {
    const byStep = new Map<number, Partial<Record<CheckpointLevel, number>>>();
    for (const c of checkpoints) {
      const row = byStep.get(c.step) ?? {};
      row[c.level] = c.at;
      byStep.set(c.step, row);
    }
    return [...byStep.entries()].sort((a, b) => b[0] - a[0]);
  }, [checkpoints]);
  const drawn = useMemo(() => {
    let t0 = Infinity;
    let t1 = -Infinity;
    for (const c of checkpoints) {
      t0 = Math.min(t0, c.at);
      t1 = Math.max(t1, c.at);
    }
    const span = Math.max(1, t1 - t0);
    const x = (at: number): number => left + ((at - t0) / span) * (width - left - right);
    const rows = levels.map((level) => {
      const commits = checkpoints
        .filter((c) => c.level === level)
        .sort((a, b) => a.at - b.at || a.step - b.step);
      const { bucketed, marks } = timelineMarks(commits, x);
      // Label a mark's (newest) step only when the previous label is far enough away to read.
      const labelled = new Set<number>();
      let lastX = -Infinity;
      for (const [i, m] of marks.entries())
        if (m.x - lastX >= 40) {
          labelled.add(i);
          lastX = m.x;
        }
      const most = Math.max(1, ...marks.map((m) => m.count));
      return { level, commits: commits.length, bucketed, marks, labelled, most };
    });
    return { t0, t1, rows };
  }, [checkpoints]);

  if (checkpoints.length === 0)
    return <Empty>No checkpoint has committed yet (the trainer saves every few steps).</Empty>;

  const { t0, t1, rows } = drawn;
  const bucketedRows = rows.filter((r) => r.bucketed);
  return (
    <div className="ckpt" data-checkpoints={checkpoints.length}>
      <svg
        viewBox={`0 0 ${width} ${rowHeight * levels.length + 24}`}
        className="ckpt-svg"
        role="img"
        aria-label="checkpoint timeline"
      >
        {rows.map((row, i) => {
          const y = i * rowHeight + 20;
          return (
            <g
              key={row.level}
              className={`ckpt-row ckpt-${row.level}`}
              data-level={row.level}
              data-commits={row.commits}
              data-bucketed={row.bucketed}
            >
              <text x={0} y={y + 4} className="ckpt-label">
                {levelNames[row.level]}
              </text>
              <line x1={left} x2={width - right} y1={y} y2={y} className="ckpt-axis" />
              {row.marks.map((m, j) => {
                // A bucket's bar grows with its count (3 to 16 units), centred on the axis.
                const h = 3 + (13 * m.count) / row.most;
                return (
                  <g key={j}>
                    {row.bucketed ? (
                      <rect
                        className="ckpt-mark ckpt-bucket"
                        data-count={m.count}
                        x={m.x - bucketWidth / 2 + 1.5}
                        y={y - h / 2}
                        width={bucketWidth - 3}
                        height={h}
                      >
                        <title>{markTitle(m, row.level)}</title>
                      </rect>
                    ) : (
                      <circle className="ckpt-mark" data-count={1} cx={m.x} cy={y} r={5}>
                        <title>{markTitle(m, row.level)}</title>
                      </circle>
                    )}
                    {row.labelled.has(j) ? (
                      <text x={m.x} y={y - 11} className="ckpt-step">
                        {m.lastStep}
                      </text>
                    ) : null}
                  </g>
                );
              })}
            </g>
          );
        })}
        <text x={left} y={rowHeight * levels.length + 18} className="ckpt-time">
          {clock(t0)}
        </text>
        <text
          x={width - right}
          y={rowHeight * levels.length + 18}
          className="ckpt-time"
          textAnchor="end"
        >
          {clock(t1)}
        </text>
      </svg>
      {bucketedRows.length === 0 ? null : (
        <p className="muted small" data-testid="ckpt-buckets">
          {bucketedRows
            .map(
              (r) =>
                `${r.commits.toLocaleString('en')} commits at ${r.level} in ${r.marks.length} bars`,
            )
            .join(', ')}
          ; a bar holds the commits of{' '}
          {duration((t1 - t0) / 1000 / Math.floor((width - left - right) / bucketWidth))} (its
          height and tooltip give how many).
        </p>
      )}
      <table className="table compact">
        <thead>
          <tr>
            <th>step</th>
            <th>L1 at</th>
            <th>L2 after L1</th>
            <th>L3 after L1</th>
          </tr>
        </thead>
        <tbody>
          {steps.slice(0, 8).map(([step, at]) => (
            <tr key={step}>
              <td>{step}</td>
              <td>{at.L1 === undefined ? '–' : clock(at.L1)}</td>
              <td>
                {at.L2 === undefined
                  ? '–'
                  : at.L1 === undefined
                    ? clock(at.L2)
                    : `+${duration((at.L2 - at.L1) / 1000)}`}
              </td>
              <td>
                {at.L3 === undefined
                  ? '–'
                  : at.L1 === undefined
                    ? clock(at.L3)
                    : `+${duration((at.L3 - at.L1) / 1000)}`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
