import type { Device } from '../devices/device-plugin.ts';
import type { ProbeResult } from '../protocol.ts';

/** The `devices` probe from a discovery: fails when a device failed or discovery itself failed. */
export function deviceProbeResult(devices: readonly Device[], error: string | null): ProbeResult {
  const name = 'devices';
  if (error !== null) return { name, ok: false, message: error };
  const failed = devices.filter((d) => d.health === 'failed');
  const degraded = devices.filter((d) => d.health === 'degraded');
  const describe = (list: readonly Device[]): string =>
    list.map((d) => `${d.kind}:${d.index} ${d.problem ?? d.health}`).join('; ');
  if (failed.length > 0) return { name, ok: false, message: `failed: ${describe(failed)}` };
  if (degraded.length > 0) return { name, ok: true, message: `degraded: ${describe(degraded)}` };
  return { name, ok: true, message: `${devices.length} healthy` };
}
