import type { ComponentType } from 'react';

/** Views shown only when the control plane offers their API (planner, simulator). */
export const optionalViews: readonly {
  readonly path: string;
  readonly label: string;
  readonly component: ComponentType;
}[] = [];
