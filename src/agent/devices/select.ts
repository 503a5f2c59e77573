import { CubeError } from '../../core/index.ts';
import { amdPlugin } from './amd/plugin.ts';
import { cpuPlugin } from './cpu/plugin.ts';
import type { DevicePlugin, RunCommand } from './device-plugin.ts';
import { nvidiaPlugin } from './nvidia/plugin.ts';
import { runCommand } from './run-command.ts';

/**
 * The device plugin a `--devices` value names: `cpu:N` (N virtual CPU devices; `cpu` is one),
 * `nvidia`, `amd`, or `auto` (NVIDIA when `nvidia-smi -L` works, else AMD when `amd-smi` or
 * `rocm-smi` does, else one CPU device).
 */
export async function selectDevicePlugin(
  spec: string,
  options: { readonly run?: RunCommand; readonly signal?: AbortSignal } = {},
): Promise<DevicePlugin> {
  const run = options.run ?? runCommand;
  const cpu = /^cpu(?::(\d+))?$/.exec(spec);
  if (cpu !== null) return cpuPlugin({ count: cpu[1] === undefined ? 1 : Number(cpu[1]) });
  if (spec === 'nvidia') return nvidiaPlugin({ run });
  if (spec === 'amd') return amdPlugin({ run });
  if (spec === 'auto') {
    const opts = {
      timeoutMs: 10_000,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
    if ((await run(['nvidia-smi', '-L'], opts)).exitCode === 0) return nvidiaPlugin({ run });
    if ((await run(['amd-smi', 'list', '--json'], opts)).exitCode === 0) return amdPlugin({ run });
    if ((await run(['rocm-smi', '--showid', '--json'], opts)).exitCode === 0)
      return amdPlugin({ run });
    return cpuPlugin({ count: 1 });
  }
  throw new CubeError('BAD_FLAG', `--devices must be cpu:N, nvidia, amd or auto, got "${spec}"`, {
    where: { field: '--devices', allowed: ['cpu:N', 'nvidia', 'amd', 'auto'] },
  });
}
