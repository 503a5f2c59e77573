import { useClient } from './client-context.tsx';
import type { PlanOptions } from './types.ts';
import { useResource, type Resource } from './use-resource.ts';

/** The models and accelerators the planner takes (`GET /plan/options`). */
export type Choices = PlanOptions;
/** A model the planner takes. */
export type ModelChoice = Choices['models'][number];
/** An accelerator of the catalog. */
export type AcceleratorChoice = Choices['accelerators'][number];

/** The models and accelerators to choose from. */
export function useChoices(): Resource<Choices> {
  const client = useClient();
  return useResource('plan-options', (signal) => client.get<Choices>('/plan/options', { signal }));
}
