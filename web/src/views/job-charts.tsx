import { useMemo } from 'react';
import type uPlot from 'uplot';
import type { CubeEvent, SeriesPoint } from '../api/types.ts';
import { UPlotChart, type ChartMarker, type ChartOptions } from '../components/uplot-chart.tsx';
import { si } from '../format.ts';

/** Faults and recoveries of a job, as markers on its curves. */
export interface JobMarkers {
  readonly byStep: readonly ChartMarker[];
  readonly byTime: readonly ChartMarker[];
}

function unique(markers: ChartMarker[]): ChartMarker[] {
  const seen = new Set<string>();
  return markers.filter((m) => {
    const key = `${m.kind}:${m.x}:${m.label}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Where the job's faults and recoveries go on its curves. A fault sits at the last step
 * reported before it was detected (loss curve) and at its detection time (throughput curve);
 * a recovery sits at the step it restored (from `job-restored`, else `job-resumed`) and at
 * the time the gang ran again.
 */
export function jobMarkers(
  events: readonly CubeEvent[],
  points: readonly SeriesPoint[],
): JobMarkers {
  const byStep: ChartMarker[] = [];
  const byTime: ChartMarker[] = [];
  const stepAt = (ms: number): number => {
    let step = 0;
    for (const p of points) if (p.at <= ms && p.step > step) step = p.step;
    return step;
  };
  const restoredByAttempt = new Map<number, { step: number; level: string }>();
  for (const e of events)
    if (e.kind === 'job-restored' && typeof e.data.step === 'number' && e.attempt != null) {
      const known = restoredByAttempt.get(e.attempt);
      if (known === undefined || e.data.step < known.step)
        restoredByAttempt.set(e.attempt, {
          step: e.data.step,
          level: typeof e.data.level === 'string' ? e.data.level : '?',
        });
    }
  for (const e of events) {
    const ms = Date.parse(e.at);
    if (e.kind === 'fault-detected') {
      const cause = typeof e.data.cause === 'string' ? e.data.cause : 'fault';
      byStep.push({ kind: 'fault', x: stepAt(ms), label: `fault: ${cause}` });
      byTime.push({ kind: 'fault', x: ms / 1000, label: `fault: ${cause}` });
    } else if (e.kind === 'job-resumed') {
      const restored = e.attempt == null ? undefined : restoredByAttempt.get(e.attempt);
      const step = restored?.step ?? (typeof e.data.step === 'number' ? e.data.step : stepAt(ms));
      const label =
        restored === undefined
          ? `resumed at step ${step}`
          : `restored step ${restored.step} from ${restored.level}`;
      byStep.push({ kind: 'recovery', x: step, label });
      byTime.push({ kind: 'recovery', x: ms / 1000, label });
    }
  }
  return { byStep: unique(byStep), byTime: unique(byTime) };
}

/**
 * The loss per step: where an attempt replayed steps after a restore, its values (the
 * newest attempt's) are shown.
 */
export function LossChart(props: {
  points: readonly SeriesPoint[];
  markers: readonly ChartMarker[];
}) {
  const options = useMemo<ChartOptions>(
    () => ({
      scales: { x: { time: false } },
      axes: [{ label: 'step' }, { label: 'loss', size: 60 }],
      series: [
        { label: 'step' },
        { label: 'loss', stroke: '#2a6fdb', width: 2, points: { show: false }, spanGaps: true },
      ],
      legend: { show: true },
    }),
    [],
  );
  const data = useMemo<uPlot.AlignedData>(() => {
    const byStep = new Map<number, number | null>();
    for (const p of props.points) byStep.set(p.step, p.loss);
    const steps = [...byStep.keys()].sort((a, b) => a - b);
    return [steps, steps.map((s) => byStep.get(s) ?? null)];
  }, [props.points]);
  return (
    <UPlotChart
      label="loss curve"
      options={options}
      data={data}
      markers={props.markers}
      height={260}
    />
  );
}

/**
 * The job's throughput (tokens/s summed over ranks) over wall-clock time, in seconds since
 * `originMs` (the job's start). Markers come in epoch seconds.
 */
export function ThroughputChart(props: {
  points: readonly SeriesPoint[];
  markers: readonly ChartMarker[];
  originMs: number;
}) {
  const { originMs } = props;
  const options = useMemo<ChartOptions>(
    () => ({
      scales: { x: { time: false } },
      axes: [
        { label: 'seconds since the job started' },
        { label: 'tokens/s', size: 70, values: (_u, ticks) => ticks.map((t) => si(t)) },
      ],
      series: [
        { label: 's' },
        {
          label: 'tokens/s',
          stroke: '#7a3fd1',
          fill: 'rgba(122, 63, 209, 0.08)',
          width: 2,
          points: { show: false },
        },
      ],
    }),
    [],
  );
  const data = useMemo<uPlot.AlignedData>(() => {
    const sorted = [...props.points]
      .filter((p) => p.tokensPerS !== null)
      .sort((a, b) => a.at - b.at);
    // A gap (null) between attempts: no line is drawn across a recovery.
    const xs: number[] = [];
    const ys: (number | null)[] = [];
    sorted.forEach((p, i) => {
      const previous = sorted[i - 1];
      if (previous !== undefined && previous.attempt !== p.attempt) {
        xs.push((previous.at + 1 - originMs) / 1000);
        ys.push(null);
      }
      xs.push((p.at - originMs) / 1000);
      ys.push(p.tokensPerS);
    });
    return [xs, ys];
  }, [props.points, originMs]);
  const markers = useMemo(
    () => props.markers.map((m) => ({ ...m, x: m.x - originMs / 1000 })),
    [props.markers, originMs],
  );
  return (
    <UPlotChart label="throughput" options={options} data={data} markers={markers} height={260} />
  );
}
