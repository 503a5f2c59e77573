import { CubeError } from '../../../core/index.ts';
import type { Device, DevicePlugin, RunCommand } from '../device-plugin.ts';
import { runCommand } from '../run-command.ts';
import {
  amdSmiListArgs,
  amdSmiMetricArgs,
  amdSmiStaticArgs,
  parseAmdSmi,
  parseRocmSmi,
  rocmSmiArgs,
} from './parse.ts';

export interface AmdPluginOptions {
  /** Default: run the real tools. */
  readonly run?: RunCommand;
  readonly maxTemperatureC?: number;
}

/** AMD GPUs through `amd-smi` (list + metric, static for names), else `rocm-smi`. */
export function amdPlugin(options: AmdPluginOptions = {}): DevicePlugin {
  const run = options.run ?? runCommand;
  return {
    kind: 'amd',
    async discover({ signal } = {}): Promise<Device[]> {
      const opts = { timeoutMs: 30_000, ...(signal === undefined ? {} : { signal }) };
      const list = await run(['amd-smi', ...amdSmiListArgs], opts);
      if (list.exitCode === 0) {
        const metric = await run(['amd-smi', ...amdSmiMetricArgs], opts);
        if (metric.exitCode !== 0) throw failed('amd-smi metric', metric);
        const asic = await run(['amd-smi', ...amdSmiStaticArgs], opts);
        return parseAmdSmi(
          {
            list: list.stdout,
            metric: metric.stdout,
            ...(asic.exitCode === 0 ? { static: asic.stdout } : {}),
          },
          options,
        );
      }
      const rocm = await run(['rocm-smi', ...rocmSmiArgs], opts);
      if (rocm.exitCode === 0) return parseRocmSmi(rocm.stdout, options);
      // Report the tool that exists: amd-smi when it ran and failed, else rocm-smi.
      throw list.exitCode !== null ? failed('amd-smi list', list) : failed('rocm-smi', rocm);
    },
  };
}

function failed(
  what: string,
  result: { exitCode: number | null; stderr: string; stdout: string },
): CubeError {
  const why = (result.stderr || result.stdout).trim().split('\n')[0] ?? '';
  return new CubeError(
    'INFEASIBLE',
    `${what} failed (${result.exitCode === null ? 'did not run' : `exit ${result.exitCode}`}): ${why}`,
    { hint: 'is the amdgpu driver loaded and amd-smi or rocm-smi on PATH?' },
  );
}
