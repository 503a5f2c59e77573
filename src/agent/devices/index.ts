export type {
  CommandResult,
  Device,
  DeviceHealth,
  DeviceKind,
  DevicePlugin,
  RunCommand,
} from './device-plugin.ts';
export { runCommand } from './run-command.ts';
export { selectDevicePlugin } from './select.ts';
export { cpuPlugin } from './cpu/plugin.ts';
export type { CpuPluginOptions } from './cpu/plugin.ts';
export { parseCpuModel } from './cpu/parse.ts';
export { nvidiaPlugin } from './nvidia/plugin.ts';
export type { NvidiaPluginOptions } from './nvidia/plugin.ts';
export { nvidiaSmiArgs, parseNvidiaSmi } from './nvidia/parse.ts';
export { amdPlugin } from './amd/plugin.ts';
export type { AmdPluginOptions } from './amd/plugin.ts';
export {
  amdSmiListArgs,
  amdSmiMetricArgs,
  amdSmiStaticArgs,
  parseAmdSmi,
  parseRocmSmi,
  rocmSmiArgs,
} from './amd/parse.ts';
