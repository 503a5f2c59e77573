export type { HealthProbe } from './health-probe.ts';
export { commandProbe } from './command-probe.ts';
export { deviceProbeResult } from './device-probe.ts';
export { freeBytes, freeSpaceProbe } from './free-space.ts';
