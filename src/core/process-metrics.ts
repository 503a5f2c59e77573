import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import type { Registry } from 'prom-client';

// prom-client is loaded by the caller that made `registry`, not with core: importing it here
// added ~50 ms of CPU to every `cube` call (bench/cli). It is CommonJS, so this is the same
// module instance the caller's import loaded.
const load = createRequire(import.meta.url);

/**
 * prom-client's default gauges whose names end in `_total`, which Prometheus reserves for
 * counters (`promtool check metrics` rejects them). Each is the sum of the labelled gauge of the
 * same name without `_total` (`sum(cube_control_nodejs_active_handles)` gives it back).
 */
const gaugesNamedLikeCounters = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

/**
 * Registers the Node process metrics (CPU, memory, file descriptors, event loop lag, GC) under
 * `prefix`, less the gauges named like counters, so the output passes `promtool check metrics`.
 */
export function registerProcessMetrics(registry: Registry, prefix: string): void {
  const { collectDefaultMetrics } = load('prom-client') as typeof PromClient;
  collectDefaultMetrics({ register: registry, prefix });
  for (const name of gaugesNamedLikeCounters) registry.removeSingleMetric(`${prefix}${name}`);
}
