// Number and time formatting shared by the views.

/** 1234567 -> "1.23 M". */
export function si(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  const units = ['', ' k', ' M', ' G', ' T', ' P'];
  let v = value;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${Number(v.toPrecision(digits))}${units[i] ?? ''}`;
}

/** Bytes in binary units: "1.5 GiB". */
export function bytes(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = value;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${Number(v.toPrecision(3))} ${units[i] ?? ''}`;
}

/** Seconds as "1 h 02 min", "3.2 s", "250 ms". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  if (seconds < 1) return `${Number((seconds * 1000).toPrecision(3))} ms`;
  if (seconds < 60) return `${Number(seconds.toPrecision(3))} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds % 3600) / 60);
  return `${h} h ${String(m).padStart(2, '0')} min`;
}

/** Epoch ms (or an ISO string) as local wall-clock time with milliseconds. */
export function clock(at: number | string): string {
  const d = new Date(at);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** How long ago, coarsely: "5 s ago". */
export function ago(at: number | null, now: number): string {
  if (at === null) return 'never';
  return `${duration(Math.max(0, (now - at) / 1000))} ago`;
}

/** A ratio as a percentage: 0.953 -> "95.3 %". */
export function percent(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  return `${(value * 100).toFixed(digits)} %`;
}
