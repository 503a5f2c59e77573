import { z } from 'zod';

/** The faults a chaos campaign injects (docs/chaos.md says what each one does). */
export const FaultKindSchema = z.enum([
  'rank-kill',
  'node-kill',
  'control-plane-kill',
  'hang',
  'partition',
  'straggler',
  'corrupt-shard',
]);
export type FaultKind = z.output<typeof FaultKindSchema>;

/** Every fault kind, in the order reports list them. */
export const faultKinds: readonly FaultKind[] = FaultKindSchema.options;

/** What each kind is expected to be: where the orchestrator must not cordon a healthy node. */
export const applicationFaults: ReadonlySet<FaultKind> = new Set(['rank-kill', 'corrupt-shard']);
