// Reading Prometheus' text format in tests: samples by name and labels, the metric names a
// scrape declares, and `promtool check metrics` on a scrape.
import { spawnSync } from 'node:child_process';

/** One sample line: `name{labels} value`. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Every sample of a scrape (comments skipped). */
export function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] ?? ''] = l[2] ?? '';
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples of `name` whose labels include `labels`. */
export function find(
  text: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Sample[] {
  return samples(text).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** The one sample of `name` with `labels`; fails when there is none or several. */
export function value(
  text: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  const found = find(text, name, labels);
  if (found.length !== 1)
    throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return (found[0] as Sample).value;
}

/**
 * The series names a scrape can answer a query for: each declared metric, and for histograms
 * and summaries their `_bucket`, `_sum` and `_count` series.
 */
export function seriesNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const name = m[1] ?? '';
    names.add(name);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (m[2] === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

/** Runs `promtool check metrics` on `text`: its findings (empty when it passes). */
export function promtoolFindings(text: string): string {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error !== undefined)
    throw new Error(
      `promtool is missing (${r.error.message}): run \`bash scripts/setup.sh\` (it installs Debian's prometheus package)`,
    );
  const said = `${r.stdout}${r.stderr}`.trim();
  return r.status === 0 && said === '' ? '' : said || `exit ${String(r.status)}`;
}
