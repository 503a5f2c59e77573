import { CubeError } from '../../../core/index.ts';
import type { Device, DeviceHealth } from '../device-plugin.ts';

/** The query the NVIDIA plugin runs; `parseNvidiaSmi` reads its output. */
export const nvidiaSmiArgs = [
  '--query-gpu=index,name,uuid,memory.total,temperature.gpu,utilization.gpu,ecc.errors.uncorrected.volatile.total',
  '--format=csv,noheader,nounits',
] as const;

export interface NvidiaParseOptions {
  /** At or above this temperature a GPU is `degraded` (default 90 °C). */
  readonly maxTemperatureC?: number;
}

const brokenValue = /^(?:ERR!|\[GPU requires reset\]|\[Unknown Error\]|\[GPU is lost\])$/i;
const missingValue = /^(?:\[N\/A\]|N\/A|\[Not Supported\]|\[Insufficient Permissions\])$/i;

/**
 * Reads `nvidia-smi --query-gpu=index,name,uuid,memory.total,temperature.gpu,utilization.gpu,
 * ecc.errors.uncorrected.volatile.total --format=csv,noheader,nounits`: one line per GPU,
 * memory in MiB. A GPU with uncorrected ECC errors or a field reading `ERR!` or
 * `[GPU requires reset]` is `failed`; one at or above the temperature limit is `degraded`.
 */
export function parseNvidiaSmi(csv: string, options: NvidiaParseOptions = {}): Device[] {
  const maxTemperatureC = options.maxTemperatureC ?? 90;
  const devices: Device[] = [];
  for (const [lineNo, raw] of csv.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const fields = line.split(',').map((f) => f.trim());
    if (fields.length < 7)
      throw new CubeError(
        'INVALID_VALUE',
        `nvidia-smi line ${lineNo + 1} has ${fields.length} fields, expected 7: "${line}"`,
        { where: { path: `line ${lineNo + 1}` } },
      );
    // A name with a comma in it spreads over several fields; the other six are fixed.
    const [indexText = '', ...rest] = fields;
    const [uuid = '', memoryText = '', temperatureText = '', utilizationText = '', eccText = ''] =
      rest.slice(-5);
    const name = rest.slice(0, -5).join(', ');
    const index = Number(indexText);
    if (!Number.isInteger(index) || index < 0)
      throw new CubeError(
        'INVALID_VALUE',
        `nvidia-smi line ${lineNo + 1}: bad index "${indexText}"`,
        {
          where: { path: `line ${lineNo + 1}` },
        },
      );
    const problems: string[] = [];
    let health: DeviceHealth = 'ok';
    const broken = fields.filter((f) => brokenValue.test(f));
    if (broken.length > 0) {
      health = 'failed';
      problems.push(`nvidia-smi reports ${[...new Set(broken)].join(', ')}`);
    }
    const ecc = numberOrNull(eccText);
    if (ecc !== null && ecc > 0) {
      health = 'failed';
      problems.push(`${ecc} uncorrected ECC errors`);
    }
    const temperatureC = numberOrNull(temperatureText);
    if (health === 'ok' && temperatureC !== null && temperatureC >= maxTemperatureC) {
      health = 'degraded';
      problems.push(`temperature ${temperatureC} °C at or above ${maxTemperatureC} °C`);
    }
    const memoryMiB = numberOrNull(memoryText);
    const utilizationPercent = numberOrNull(utilizationText);
    devices.push({
      index,
      kind: 'nvidia',
      model: name,
      memoryBytes: memoryMiB === null ? 0 : Math.round(memoryMiB * 1024 * 1024),
      health,
      ...(uuid === '' || missingValue.test(uuid) ? {} : { uuid }),
      ...(temperatureC === null ? {} : { temperatureC }),
      ...(utilizationPercent === null ? {} : { utilizationPercent }),
      ...(problems.length === 0 ? {} : { problem: problems.join('; ') }),
    });
  }
  return devices.sort((a, b) => a.index - b.index);
}

function numberOrNull(text: string): number | null {
  if (text === '' || missingValue.test(text) || brokenValue.test(text)) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}
