import { CubeError } from '../../../core/index.ts';
import type { DevicePlugin, RunCommand } from '../device-plugin.ts';
import { runCommand } from '../run-command.ts';
import { nvidiaSmiArgs, parseNvidiaSmi } from './parse.ts';

export interface NvidiaPluginOptions {
  /** Default: run the real `nvidia-smi`. */
  readonly run?: RunCommand;
  readonly program?: string;
  readonly maxTemperatureC?: number;
}

/** NVIDIA GPUs through `nvidia-smi`'s CSV query. */
export function nvidiaPlugin(options: NvidiaPluginOptions = {}): DevicePlugin {
  const run = options.run ?? runCommand;
  const program = options.program ?? 'nvidia-smi';
  return {
    kind: 'nvidia',
    async discover({ signal } = {}) {
      const result = await run([program, ...nvidiaSmiArgs], {
        timeoutMs: 30_000,
        ...(signal === undefined ? {} : { signal }),
      });
      if (result.exitCode !== 0)
        throw new CubeError(
          'INFEASIBLE',
          `${program} failed (${result.exitCode === null ? 'did not run' : `exit ${result.exitCode}`}): ${firstLine(result.stderr || result.stdout)}`,
          { hint: 'is the NVIDIA driver loaded and nvidia-smi on PATH?' },
        );
      return parseNvidiaSmi(result.stdout, options);
    },
  };
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
