import { readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { CubeError } from '../../../core/index.ts';
import type { Device, DevicePlugin } from '../device-plugin.ts';
import { parseCpuModel } from './parse.ts';

export interface CpuPluginOptions {
  /** How many virtual devices this node offers (one rank each). */
  readonly count: number;
  /** Host memory shared by the devices (default: all of it). */
  readonly memoryBytes?: number;
  /** Where to read the processor name (default /proc/cpuinfo). */
  readonly cpuinfoPath?: string;
}

/**
 * `count` virtual CPU devices sharing the host: each gets an equal part of the memory and is
 * always healthy. For laptops, CI and demos, where ranks train on the CPU.
 */
export function cpuPlugin(options: CpuPluginOptions): DevicePlugin {
  if (!Number.isInteger(options.count) || options.count < 1)
    throw new CubeError(
      'INVALID_VALUE',
      `cpu devices: count must be a positive integer, got ${options.count}`,
      {
        where: { field: 'count' },
      },
    );
  return {
    kind: 'cpu',
    async discover(): Promise<Device[]> {
      const cpuinfo = await readFile(options.cpuinfoPath ?? '/proc/cpuinfo', 'utf8').catch(
        () => '',
      );
      const model = parseCpuModel(cpuinfo) ?? cpus()[0]?.model ?? 'cpu';
      const memoryBytes = Math.floor((options.memoryBytes ?? totalmem()) / options.count);
      return Array.from({ length: options.count }, (_, index) => ({
        index,
        kind: 'cpu' as const,
        model,
        memoryBytes,
        health: 'ok' as const,
      }));
    },
  };
}
