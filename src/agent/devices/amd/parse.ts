import { CubeError } from '../../../core/index.ts';
import type { Device, DeviceHealth } from '../device-plugin.ts';

/** The commands the AMD plugin runs; the parse functions below read their output. */
export const amdSmiListArgs = ['list', '--json'] as const;
export const amdSmiMetricArgs = ['metric', '--json'] as const;
export const amdSmiStaticArgs = ['static', '--asic', '--json'] as const;
export const rocmSmiArgs = [
  '--showmeminfo',
  'vram',
  '--showproductname',
  '--showtemp',
  '--showuse',
  '--json',
] as const;

export interface AmdParseOptions {
  /** At or above this temperature (hotspot/junction, else edge) a GPU is `degraded` (default 100 °C). */
  readonly maxTemperatureC?: number;
}

type Json = unknown;

/**
 * Reads `amd-smi list --json` and `amd-smi metric --json` (and, when given, `amd-smi static
 * --asic --json` for the product name). Each is an array of per-GPU objects keyed by `gpu`, or
 * (newer amd-smi) an object holding that array as `gpu_data`. Values are numbers, strings, or
 * `{value, unit}`; `N/A` means unknown. A GPU with uncorrectable ECC errors is `failed`.
 */
export function parseAmdSmi(
  outputs: { readonly list: string; readonly metric: string; readonly static?: string },
  options: AmdParseOptions = {},
): Device[] {
  const maxTemperatureC = options.maxTemperatureC ?? 100;
  const list = gpuEntries(parseJson(outputs.list, 'amd-smi list'), 'amd-smi list');
  const metric = byGpu(gpuEntries(parseJson(outputs.metric, 'amd-smi metric'), 'amd-smi metric'));
  const statics =
    outputs.static === undefined
      ? new Map<number, Record<string, Json>>()
      : byGpu(gpuEntries(parseJson(outputs.static, 'amd-smi static'), 'amd-smi static'));
  const indices = list.length > 0 ? list.map((e) => gpuIndex(e)) : [...metric.keys()];
  const listed = byGpu(list);
  return indices
    .sort((a, b) => a - b)
    .map((index) => {
      const entry = { ...statics.get(index), ...listed.get(index), ...metric.get(index) };
      const memoryBytes =
        bytesOf(path(entry, 'mem_usage', 'total_vram')) ??
        bytesOf(path(entry, 'vram', 'size')) ??
        0;
      const temperatureC =
        numberOf(path(entry, 'temperature', 'hotspot')) ??
        numberOf(path(entry, 'temperature', 'junction')) ??
        numberOf(path(entry, 'temperature', 'edge'));
      const utilizationPercent = numberOf(path(entry, 'usage', 'gfx_activity'));
      const ecc =
        numberOf(path(entry, 'ecc', 'total_uncorrectable_count')) ??
        numberOf(path(entry, 'ecc', 'total_uncorrectable'));
      const model =
        stringOf(path(entry, 'asic', 'market_name')) ?? stringOf(entry.market_name) ?? 'AMD GPU';
      const uuid = stringOf(entry.uuid);
      return device(
        index,
        model,
        memoryBytes,
        { temperatureC, utilizationPercent, ecc, uuid },
        maxTemperatureC,
      );
    });
}

/**
 * Reads `rocm-smi --showmeminfo vram [--showproductname --showtemp --showuse] --json`: an
 * object with one `cardN` entry per GPU whose values are strings, e.g.
 * `"VRAM Total Memory (B)": "68702699520"`. Keys are matched without regard to case.
 */
export function parseRocmSmi(json: string, options: AmdParseOptions = {}): Device[] {
  const maxTemperatureC = options.maxTemperatureC ?? 100;
  const doc = parseJson(json, 'rocm-smi');
  if (!isObject(doc))
    throw new CubeError('INVALID_VALUE', 'rocm-smi --json output is not an object', {
      where: { path: '$' },
    });
  const devices: Device[] = [];
  for (const [key, value] of Object.entries(doc)) {
    const match = /^card(\d+)$/i.exec(key);
    if (match === null || !isObject(value)) continue;
    const field = (pattern: RegExp): string | undefined => {
      for (const [k, v] of Object.entries(value))
        if (pattern.test(k)) return stringOf(v) ?? undefined;
      return undefined;
    };
    const memoryBytes = numberOf(field(/^vram total memory \(b\)$/i)) ?? 0;
    const temperatureC =
      numberOf(field(/^temperature \(sensor junction\)/i)) ??
      numberOf(field(/^temperature \(sensor edge\)/i));
    const utilizationPercent = numberOf(field(/^gpu use \(%\)$/i));
    const model = field(/^card series$/i) ?? field(/^card model$/i) ?? 'AMD GPU';
    const uuid = field(/^unique id$/i) ?? null;
    devices.push(
      device(
        Number(match[1]),
        model,
        memoryBytes,
        { temperatureC, utilizationPercent, ecc: null, uuid },
        maxTemperatureC,
      ),
    );
  }
  return devices.sort((a, b) => a.index - b.index);
}

function device(
  index: number,
  model: string,
  memoryBytes: number,
  readings: {
    temperatureC: number | null;
    utilizationPercent: number | null;
    ecc: number | null;
    uuid: string | null;
  },
  maxTemperatureC: number,
): Device {
  let health: DeviceHealth = 'ok';
  let problem: string | null = null;
  if (readings.ecc !== null && readings.ecc > 0) {
    health = 'failed';
    problem = `${readings.ecc} uncorrectable ECC errors`;
  } else if (readings.temperatureC !== null && readings.temperatureC >= maxTemperatureC) {
    health = 'degraded';
    problem = `temperature ${readings.temperatureC} °C at or above ${maxTemperatureC} °C`;
  }
  return {
    index,
    kind: 'amd',
    model,
    memoryBytes: Math.round(memoryBytes),
    health,
    ...(readings.uuid === null ? {} : { uuid: readings.uuid }),
    ...(readings.temperatureC === null ? {} : { temperatureC: readings.temperatureC }),
    ...(readings.utilizationPercent === null
      ? {}
      : { utilizationPercent: readings.utilizationPercent }),
    ...(problem === null ? {} : { problem }),
  };
}

function parseJson(text: string, what: string): Json {
  // Some versions print warnings before the JSON document.
  const start = text.search(/[[{]/);
  try {
    return JSON.parse(start < 0 ? text : text.slice(start)) as Json;
  } catch (error) {
    throw new CubeError(
      'INVALID_VALUE',
      `${what} did not print JSON: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

function gpuEntries(doc: Json, what: string): Record<string, Json>[] {
  const list = isObject(doc) && Array.isArray(doc.gpu_data) ? doc.gpu_data : doc;
  if (!Array.isArray(list))
    throw new CubeError('INVALID_VALUE', `${what} --json: expected a list of GPUs`, {
      where: { path: '$' },
    });
  return list.filter(isObject);
}

function byGpu(entries: readonly Record<string, Json>[]): Map<number, Record<string, Json>> {
  return new Map(entries.map((e) => [gpuIndex(e), e]));
}

function gpuIndex(entry: Record<string, Json>): number {
  const n = numberOf(entry.gpu);
  if (n === null || !Number.isInteger(n) || n < 0)
    throw new CubeError(
      'INVALID_VALUE',
      `amd-smi entry without a GPU index: ${JSON.stringify(entry).slice(0, 80)}`,
      {
        where: { field: 'gpu' },
      },
    );
  return n;
}

function path(value: Json, ...keys: string[]): Json {
  let v = value;
  for (const key of keys) v = isObject(v) ? v[key] : undefined;
  return v;
}

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringOf(value: Json): string | null {
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string') return null;
  const s = value.trim();
  return s === '' || /^n\/a$/i.test(s) ? null : s;
}

/** A number from `12`, `"12.0"`, `"12 %"` or `{value: 12, unit: '%'}`; null when unknown. */
function numberOf(value: Json): number | null {
  const v = isObject(value) ? value.value : value;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v !== 'string') return null;
  const m = /^\s*(-?\d+(?:\.\d+)?)/.exec(v);
  return m === null ? null : Number(m[1]);
}

const units: Record<string, number> = {
  B: 1,
  KB: 1024,
  MB: 1024 ** 2,
  GB: 1024 ** 3,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
};

/** Bytes from `{value, unit}` (amd-smi's `MB` are MiB) or a bare number of MiB. */
function bytesOf(value: Json): number | null {
  const n = numberOf(value);
  if (n === null) return null;
  const unit = isObject(value) ? stringOf(value.unit) : null;
  return n * (units[(unit ?? 'MB').toUpperCase()] ?? 1024 ** 2);
}
