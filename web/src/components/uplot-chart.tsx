import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** A vertical line on a chart at `x`, e.g. a fault or a recovery. */
export interface ChartMarker {
  readonly x: number;
  readonly kind: 'fault' | 'recovery';
  readonly label: string;
}

const markerColours: Record<ChartMarker['kind'], string> = {
  fault: '#d6342c',
  recovery: '#1d8f4e',
};

/** uPlot's options less the size, which the wrapper takes from its container. */
export type ChartOptions = Omit<uPlot.Options, 'width' | 'height'>;

/**
 * A uPlot chart. The chart is created once per `options` object (pass a memoized one) and
 * takes new `data` and `markers` in place, so a live curve does not rebuild its canvas at
 * every point. It follows its container's width.
 */
export function UPlotChart(props: {
  options: ChartOptions;
  data: uPlot.AlignedData;
  markers?: readonly ChartMarker[];
  height: number;
  label: string;
}) {
  const { options, data, markers = [], height, label } = props;
  const container = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const markersRef = useRef(markers);
  const dataRef = useRef(data);

  useEffect(() => {
    markersRef.current = markers;
    dataRef.current = data;
  });

  useEffect(() => {
    const element = container.current;
    if (element === null) return;
    const drawMarkers = (u: uPlot): void => {
      const { ctx } = u;
      const { top, height: h } = u.bbox;
      ctx.save();
      ctx.lineWidth = 2 * uPlot.pxRatio;
      ctx.setLineDash([6 * uPlot.pxRatio, 4 * uPlot.pxRatio]);
      for (const m of markersRef.current) {
        const x = Math.round(u.valToPos(m.x, 'x', true));
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
        ctx.strokeStyle = markerColours[m.kind];
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + h);
        ctx.stroke();
      }
      ctx.restore();
    };
    // Unless the chart fixes its x range, the range covers the markers too: a fault after
    // the last point is still shown.
    const xScale = options.scales?.x;
    const scales: uPlot.Scales =
      xScale?.range !== undefined
        ? (options.scales ?? {})
        : {
            ...options.scales,
            x: {
              ...xScale,
              range: (_u, min, max) => {
                const xs = markersRef.current.map((m) => m.x);
                const lo = Math.min(min, ...xs);
                const hi = Math.max(max, ...xs);
                return lo === hi ? [lo - 1, hi + 1] : [lo, hi];
              },
            },
          };
    const u = new uPlot(
      {
        ...options,
        scales,
        width: Math.max(200, element.clientWidth),
        height,
        hooks: { ...options.hooks, draw: [...(options.hooks?.draw ?? []), drawMarkers] },
      },
      dataRef.current,
      element,
    );
    chart.current = u;
    const observer = new ResizeObserver(() => {
      u.setSize({ width: Math.max(200, element.clientWidth), height });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      u.destroy();
      chart.current = null;
    };
  }, [options, height]);

  useEffect(() => {
    chart.current?.setData(data);
  }, [data]);

  useEffect(() => {
    // Setting the same data again re-ranges the axes (to take in new markers) and redraws.
    const u = chart.current;
    if (u !== null) u.setData(u.data);
  }, [markers]);

  const points = data[0]?.length ?? 0;
  return (
    <figure className="chart" aria-label={label} data-points={points} data-markers={markers.length}>
      <div ref={container} className="chart-canvas" />
      {markers.length === 0 ? null : (
        <figcaption className="chart-markers">
          {markers.map((m, i) => (
            <span key={i} className={`marker marker-${m.kind}`} title={m.label}>
              {m.kind === 'fault' ? '✕' : '↺'} {m.label}
            </span>
          ))}
        </figcaption>
      )}
    </figure>
  );
}
