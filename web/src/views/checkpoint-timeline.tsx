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

/**
 * When each checkpointed step committed at each level: one row per level on a shared time
 * axis (a tick per commit, labelled with its step where there is room), then the newest
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

  if (checkpoints.length === 0)
    return <Empty>No checkpoint has committed yet (the trainer saves every few steps).</Empty>;

  const width = 900;
  const left = 130;
  const right = 20;
  const rowHeight = 30;
  const t0 = Math.min(...checkpoints.map((c) => c.at));
  const t1 = Math.max(...checkpoints.map((c) => c.at));
  const span = Math.max(1, t1 - t0);
  const x = (at: number): number => left + ((at - t0) / span) * (width - left - right);
  // Label a step only when the previous label is far enough away to read.
  const labelled = new Set<string>();
  for (const level of levels) {
    let lastX = -Infinity;
    for (const c of checkpoints.filter((e) => e.level === level).sort((a, b) => a.at - b.at)) {
      if (x(c.at) - lastX >= 28) {
        labelled.add(`${level}:${c.step}`);
        lastX = x(c.at);
      }
    }
  }

  return (
    <div className="ckpt" data-checkpoints={checkpoints.length}>
      <svg
        viewBox={`0 0 ${width} ${rowHeight * levels.length + 24}`}
        className="ckpt-svg"
        role="img"
        aria-label="checkpoint timeline"
      >
        {levels.map((level, i) => {
          const y = i * rowHeight + 14;
          return (
            <g key={level} className={`ckpt-row ckpt-${level}`}>
              <text x={0} y={y + 4} className="ckpt-label">
                {levelNames[level]}
              </text>
              <line x1={left} x2={width - right} y1={y} y2={y} className="ckpt-axis" />
              {checkpoints
                .filter((c) => c.level === level)
                .map((c) => (
                  <g key={c.step}>
                    <circle cx={x(c.at)} cy={y} r={5}>
                      <title>
                        step {c.step} committed at {level}, {clock(c.at)}
                      </title>
                    </circle>
                    {labelled.has(`${level}:${c.step}`) ? (
                      <text x={x(c.at)} y={y - 8} className="ckpt-step">
                        {c.step}
                      </text>
                    ) : null}
                  </g>
                ))}
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
