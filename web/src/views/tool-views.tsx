import type { ComponentType } from 'react';
import { PlannerView } from './planner.tsx';
import { SimulatorView } from './simulator.tsx';

/** Views beyond the cluster and its jobs, each on its own page. */
export const toolViews: readonly {
  readonly path: string;
  readonly label: string;
  readonly component: ComponentType;
}[] = [
  { path: '/planner', label: 'Planner', component: PlannerView },
  { path: '/simulator', label: 'Simulator', component: SimulatorView },
];
