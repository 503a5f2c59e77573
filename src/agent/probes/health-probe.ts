import type { ProbeResult } from '../protocol.ts';

/** One health check of the node; a result with `ok: false` is a fault the agent reports. */
export interface HealthProbe {
  readonly name: string;
  run(options: { readonly signal?: AbortSignal }): Promise<ProbeResult>;
}
