import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The control plane's Prometheus metrics (`GET /metrics`). */
export interface ControlMetrics {
  readonly registry: Registry;
  readonly nodesByState: Gauge<'state' | 'role'>;
  readonly jobsByState: Gauge<'state'>;
  readonly heartbeatLatencySeconds: Histogram;
  readonly heartbeatsTotal: Counter;
  readonly detectionSeconds: Histogram<'cause'>;
  readonly recoverySeconds: Histogram;
  readonly checkpointCommitSeconds: Histogram<'level'>;
  readonly faultsTotal: Counter<'cause'>;
}

export function createMetrics(): ControlMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cube_control_' });
  return {
    registry,
    nodesByState: new Gauge({
      name: 'cube_nodes',
      help: 'Nodes by state and role',
      labelNames: ['state', 'role'],
      registers: [registry],
    }),
    jobsByState: new Gauge({
      name: 'cube_jobs',
      help: 'Jobs by state',
      labelNames: ['state'],
      registers: [registry],
    }),
    heartbeatLatencySeconds: new Histogram({
      name: 'cube_heartbeat_handling_seconds',
      help: 'Time to handle one agent heartbeat (durable write included)',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    heartbeatsTotal: new Counter({
      name: 'cube_heartbeats_total',
      help: 'Agent heartbeats received',
      registers: [registry],
    }),
    detectionSeconds: new Histogram({
      name: 'cube_fault_detection_seconds',
      help: 'From the fault (last sign of life) to its detection',
      labelNames: ['cause'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    recoverySeconds: new Histogram({
      name: 'cube_recovery_seconds',
      help: 'From fault detection to the job running again',
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300],
      registers: [registry],
    }),
    checkpointCommitSeconds: new Histogram({
      name: 'cube_checkpoint_commit_seconds',
      help: 'From the L1 commit of a step to its commit at L2 and L3',
      labelNames: ['level'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [registry],
    }),
    faultsTotal: new Counter({
      name: 'cube_faults_total',
      help: 'Faults detected, by cause',
      labelNames: ['cause'],
      registers: [registry],
    }),
  };
}
