import type { PolicyResult } from './monte-carlo.ts';

/**
 * Plots of progress over time: days of training done (mean over trials, with the 5-95% band in
 * the SVG) against wall-clock days, with the failure-free ideal as the diagonal.
 */

const marks = ['*', 'o', '+', 'x', '#', '%', '@', '&'];
const colors = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#8c564b',
  '#e377c2',
  '#17becf',
];

function niceStep(range: number, ticks: number): number {
  const raw = range / Math.max(1, ticks);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(Math.abs(n) < 1 ? 2 : 1);
}

/** A text plot for the terminal (one mark per policy; `.` the ideal). */
export function progressPlotText(
  results: readonly PolicyResult[],
  options: { width?: number; height?: number } = {},
): string {
  const width = options.width ?? 64;
  const height = options.height ?? 16;
  const first = results[0];
  if (first === undefined) return '';
  const xMax = (first.progress.timesHours.at(-1) ?? 1) / 24;
  const yMax = xMax;
  const grid: string[][] = Array.from({ length: height }, () =>
    Array.from({ length: width }, () => ' '),
  );
  const put = (x: number, y: number, ch: string): void => {
    const col = Math.round((x / xMax) * (width - 1));
    const row = height - 1 - Math.round((y / yMax) * (height - 1));
    const line = grid[row];
    if (line !== undefined && col >= 0 && col < width) line[col] = ch;
  };
  for (let c = 0; c < width; c += 1) {
    const x = (c / (width - 1)) * xMax;
    put(x, x, '.');
  }
  results.forEach((r, i) => {
    const ch = marks[i % marks.length] as string;
    const times = r.progress.timesHours;
    // Interpolate at every column so the line has no gaps.
    for (let c = 0; c < width; c += 1) {
      const xh = (c / (width - 1)) * xMax * 24;
      let k = 0;
      while (k < times.length - 2 && (times[k + 1] as number) < xh) k += 1;
      const t0 = times[k] as number;
      const t1 = times[k + 1] ?? t0;
      const y0 = r.progress.mean[k] as number;
      const y1 = r.progress.mean[k + 1] ?? y0;
      const y = t1 === t0 ? y0 : y0 + ((y1 - y0) * (xh - t0)) / (t1 - t0);
      put(xh / 24, y / 24, ch);
    }
  });
  const labelWidth = Math.max(fmt(yMax).length, 4);
  const lines = grid.map((row, i) => {
    const y = yMax * (1 - i / (height - 1));
    const label = i === 0 || i === height - 1 || i === Math.floor(height / 2) ? fmt(y) : '';
    return `${label.padStart(labelWidth)} |${row.join('')}`;
  });
  lines.push(`${' '.repeat(labelWidth)} +${'-'.repeat(width)}`);
  const axis = `0${' '.repeat(Math.max(1, width - 1 - fmt(xMax).length))}${fmt(xMax)}`;
  lines.push(`${' '.repeat(labelWidth + 2)}${axis}`);
  lines.push(
    `${' '.repeat(labelWidth + 2)}wall-clock days; y: days of training done (mean of trials)`,
  );
  lines.push(
    `${' '.repeat(labelWidth + 2)}. ideal (no faults, no checkpoint cost)   ${results
      .map((r, i) => `${marks[i % marks.length] ?? '*'} ${r.policy}`)
      .join('   ')}`,
  );
  return lines.join('\n');
}

function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A standalone SVG of the same plot, with the 5-95% band of each policy. */
export function progressPlotSvg(results: readonly PolicyResult[], title: string): string {
  const W = 800;
  const H = 480;
  const m = { left: 70, right: 20, top: 40, bottom: 60 + 18 * results.length };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom + 18 * results.length;
  const height = H + 18 * results.length;
  const first = results[0];
  const xMax = (first?.progress.timesHours.at(-1) ?? 24) / 24 || 1;
  const yMax = xMax;
  const sx = (d: number): number => m.left + (d / xMax) * pw;
  const sy = (d: number): number => m.top + ph - (d / yMax) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
  const step = niceStep(xMax, 8);
  for (let v = 0; v <= xMax + 1e-9; v += step) {
    out.push(
      `<line x1="${sx(v).toFixed(1)}" y1="${m.top}" x2="${sx(v).toFixed(1)}" y2="${m.top + ph}" stroke="#eee"/>`,
      `<text x="${sx(v).toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle">${fmt(v)}</text>`,
      `<line x1="${m.left}" y1="${sy(v).toFixed(1)}" x2="${m.left + pw}" y2="${sy(v).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${m.left - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${m.top + ph + 36}" text-anchor="middle">wall-clock days</text>`,
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">days of training done</text>`,
    `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(xMax)}" y2="${sy(yMax)}" stroke="#999" stroke-dasharray="5 4"/>`,
  );
  results.forEach((r, i) => {
    const color = colors[i % colors.length] as string;
    const t = r.progress.timesHours.map((h) => h / 24);
    const pts = (ys: readonly number[]): string[] =>
      t.map((x, k) => `${sx(x).toFixed(1)},${sy((ys[k] ?? 0) / 24).toFixed(1)}`);
    const band = [...pts(r.progress.p95), ...pts(r.progress.p5).reverse()].join(' ');
    out.push(
      `<polygon points="${band}" fill="${color}" fill-opacity="0.15" stroke="none"/>`,
      `<polyline points="${pts(r.progress.mean).join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`,
    );
    const ly = m.top + ph + 56 + 18 * i;
    out.push(
      `<line x1="${m.left}" y1="${ly - 4}" x2="${m.left + 24}" y2="${ly - 4}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${m.left + 30}" y="${ly}">${escapeXml(`${r.policy}: goodput ${(r.goodput.mean * 100).toFixed(1)}% (5-95%: ${(r.goodput.p5 * 100).toFixed(1)}-${(r.goodput.p95 * 100).toFixed(1)}%), band = 5-95% of trials`)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
