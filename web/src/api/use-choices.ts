import { useClient } from './client-context.tsx';
import { useResource, type Resource } from './use-resource.ts';

/** A model the planner takes (`GET /plan/options`). */
export interface ModelChoice {
  readonly id: string;
  readonly family: string | null;
  readonly name: string;
  readonly params: number;
  readonly activeParams: number;
}

/** An accelerator of the catalog. */
export interface AcceleratorChoice {
  readonly id: string;
  readonly vendor: string;
  readonly name: string;
  readonly memoryGiB: number;
  readonly bf16Tflops: number | null;
}

export interface Choices {
  readonly models: readonly ModelChoice[];
  readonly accelerators: readonly AcceleratorChoice[];
}

/** The models and accelerators to choose from. */
export function useChoices(): Resource<Choices> {
  const client = useClient();
  return useResource('plan-options', (signal) => client.get<Choices>('/plan/options', { signal }));
}
