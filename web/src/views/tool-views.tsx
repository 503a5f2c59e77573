import { lazy, type ComponentType } from 'react';

// Loaded on first visit (see app.tsx).
const PlannerView = lazy(() => import('./planner.tsx').then((m) => ({ default: m.PlannerView })));
const SimulatorView = lazy(() =>
  import('./simulator.tsx').then((m) => ({ default: m.SimulatorView })),
);

/** Views beyond the cluster and its jobs, each on its own page. */
export const toolViews: readonly {
  readonly path: string;
  readonly label: string;
  readonly component: ComponentType;
}[] = [
  { path: '/planner', label: 'Planner', component: PlannerView },
  { path: '/simulator', label: 'Simulator', component: SimulatorView },
];
