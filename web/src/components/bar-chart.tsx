import { useMemo } from 'react';
import uPlot from 'uplot';
import { UPlotChart, type ChartOptions } from './uplot-chart.tsx';

/**
 * Bars for named quantities (a memory or step-time breakdown, lost hours by cause), drawn
 * with uPlot's bar paths; the chart is rebuilt only when the categories or the unit change.
 */
export function BarChart(props: {
  label: string;
  categories: readonly string[];
  values: readonly number[];
  unit: string;
  colour?: string;
  format?: (value: number) => string;
  height?: number;
}) {
  const { label, categories, values, unit, colour = '#2a6fdb', format, height = 240 } = props;
  const key = categories.join('\u0000');
  const options = useMemo<ChartOptions>(() => {
    const names = key.split('\u0000');
    const show = format ?? ((v: number) => String(Number(v.toPrecision(3))));
    return {
      scales: { x: { time: false, range: [-0.6, names.length - 0.4] } },
      axes: [
        {
          values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (names[t] ?? '') : '')),
          splits: () => names.map((_, i) => i),
          gap: 4,
          size: 40,
        },
        { label: unit, size: 60, values: (_u, ticks) => ticks.map((t) => show(t)) },
      ],
      series: [
        { label: 'term', value: (_u, v) => (v == null ? '' : (names[v] ?? '')) },
        {
          label: unit,
          fill: colour,
          stroke: colour,
          paths: uPlot.paths.bars?.({ size: [0.6, 80] }),
          points: { show: false },
          value: (_u, v) => (v == null ? '–' : show(v)),
        },
      ],
      legend: { show: true },
    };
  }, [key, unit, colour, format]);
  const data = useMemo<uPlot.AlignedData>(
    () => [categories.map((_, i) => i), [...values]],
    [categories, values],
  );
  return <UPlotChart label={label} options={options} data={data} height={height} />;
}
