import type { DeviceInfo } from '../protocol.ts';

export type DeviceKind = DeviceInfo['kind'];
export type DeviceHealth = DeviceInfo['health'];

/** One device as a plugin found it: what the control plane is told, plus what explains it. */
export interface Device extends DeviceInfo {
  readonly uuid?: string;
  readonly temperatureC?: number;
  readonly utilizationPercent?: number;
  /** Why the health is not `ok`. */
  readonly problem?: string;
}

/** The result of running a tool such as `nvidia-smi`. */
export interface CommandResult {
  /** null when it did not run (not installed) or was killed. */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program with arguments (no shell); injected so tests can feed recorded outputs. */
export type RunCommand = (
  argv: readonly string[],
  options: { readonly signal?: AbortSignal; readonly timeoutMs?: number },
) => Promise<CommandResult>;

/** Finds this node's devices of one kind and their health. */
export interface DevicePlugin {
  readonly kind: DeviceKind;
  /**
   * The devices as they are now, indexed from 0. Rejects (CubeError `INFEASIBLE`) when the
   * vendor tool fails: the caller reports that as a failed probe.
   */
  discover(options?: { readonly signal?: AbortSignal }): Promise<Device[]>;
}
