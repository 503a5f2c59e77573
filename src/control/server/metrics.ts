import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { buildInfo, registerProcessMetrics } from '../../core/index.ts';
import {
  FaultCauseSchema,
  JobStateSchema,
  NodeRoleSchema,
  NodeStateSchema,
} from '../model/index.ts';
import type { StateStore } from '../store/index.ts';
import { JobFiguresReader, type JobFigures } from './job-metrics.ts';

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

export interface ControlMetricsOptions {
  /** Where the per-job series (`cube_job_*`) are read from at scrape time; none without it. */
  readonly store?: StateStore;
  /** How long a finished job keeps its `cube_job_*` series (default 15 min). */
  readonly jobRetentionMs?: number;
  /** The clock of checkpoint ages and the retention (default `Date.now`). */
  readonly now?: () => number;
}

const jobLabels = ['job_id', 'job_name'] as const;
const levels = ['L1', 'L2', 'L3'] as const;

/**
 * Every label combination of `labels`' known values, so a labelled series is there (at 0)
 * before its first event: `rate()` and alerts see 0, not "no data".
 */
function combinations<K extends string>(
  labels: Readonly<Record<K, readonly string[]>>,
): Record<K, string>[] {
  let out: Record<string, string>[] = [{}];
  for (const [name, values] of Object.entries<readonly string[]>(labels))
    out = out.flatMap((o) => values.map((v) => ({ ...o, [name]: v })));
  return out;
}

/**
 * The control plane's registry: the Node process metrics (`cube_control_` prefix), build info,
 * node/job/fault/recovery/checkpoint-commit figures the orchestrator updates, and with a store
 * the per-job training series read from it at each scrape.
 */
export function createMetrics(options: ControlMetricsOptions = {}): ControlMetrics {
  const registry = new Registry();
  registerProcessMetrics(registry, 'cube_control_');
  const now = options.now ?? Date.now;

  const info = buildInfo();
  new Gauge({
    name: 'cube_build_info',
    help: 'Always 1; the labels say which Cube build serves these metrics',
    labelNames: ['version', 'commit', 'node_version'],
    registers: [registry],
  }).set({ version: info.version, commit: info.commit, node_version: info.nodeVersion }, 1);

  const nodeCombos = combinations({
    state: NodeStateSchema.options,
    role: NodeRoleSchema.options,
  });
  const jobCombos = combinations({ state: JobStateSchema.options });
  const causes = combinations({ cause: FaultCauseSchema.options });

  const metrics: ControlMetrics = {
    registry,
    nodesByState: new Gauge({
      name: 'cube_nodes',
      help: 'Nodes by state and role',
      labelNames: ['state', 'role'],
      registers: [registry],
      // The orchestrator resets and refills this gauge from the store; the states it found no
      // node in come back here at 0.
      collect() {
        for (const labels of nodeCombos) this.inc(labels, 0);
      },
    }),
    jobsByState: new Gauge({
      name: 'cube_jobs',
      help: 'Jobs by state',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        for (const labels of jobCombos) this.inc(labels, 0);
      },
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
  for (const labels of causes) {
    metrics.faultsTotal.inc(labels, 0);
    metrics.detectionSeconds.zero(labels);
  }
  for (const level of ['L2', 'L3']) metrics.checkpointCommitSeconds.zero({ level });

  if (options.store !== undefined)
    registerJobMetrics(
      registry,
      new JobFiguresReader(options.store, {
        now,
        ...(options.jobRetentionMs === undefined ? {} : { retentionMs: options.jobRetentionMs }),
      }),
      now,
    );
  return metrics;
}

/**
 * The per-job series, labelled `job_id` and `job_name` (not `job`: Prometheus sets `job` to the
 * scrape job's name and would rename ours `exported_job`). One store read per scrape feeds them
 * all: each metric's collect awaits the same snapshot.
 */
function registerJobMetrics(registry: Registry, reader: JobFiguresReader, now: () => number): void {
  // registry.metrics() calls every metric's collect in one synchronous loop: the first starts
  // the read, the others join it, and it is forgotten once done, so the next scrape reads anew.
  let pending: Promise<JobFigures[]> | null = null;
  const figures = (): Promise<JobFigures[]> => {
    pending ??= reader.read().finally(() => (pending = null));
    return pending;
  };
  const perJob = (name: string, help: string, value: (f: JobFigures) => number | null): void => {
    new Gauge({
      name,
      help,
      labelNames: jobLabels,
      registers: [registry],
      async collect() {
        const all = await figures();
        this.reset();
        for (const f of all) {
          const v = value(f);
          if (v !== null) this.set({ job_id: f.jobId, job_name: f.jobName }, v);
        }
      },
    });
  };
  perJob(
    'cube_job_step',
    "The newest step every rank of the job's current attempt reported",
    (f) => f.step,
  );
  perJob(
    'cube_job_loss',
    'The loss at that step, averaged over the ranks that reported one',
    (f) => f.loss,
  );
  perJob(
    'cube_job_tokens_per_second',
    "The job's throughput at that step: the sum of the ranks' own tokens/s",
    (f) => f.tokensPerS,
  );
  new Counter({
    name: 'cube_job_restarts_total',
    help: 'Gang restarts of the job after faults',
    labelNames: jobLabels,
    registers: [registry],
    async collect() {
      const all = await figures();
      this.reset();
      for (const f of all) this.inc({ job_id: f.jobId, job_name: f.jobName }, f.restarts);
    },
  });
  const perLevel = (
    name: string,
    help: string,
    value: (c: { step: number; at: number }) => number,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames: [...jobLabels, 'level'],
      registers: [registry],
      async collect() {
        const all = await figures();
        this.reset();
        for (const f of all)
          for (const level of levels) {
            const c = f.checkpoints[level];
            if (c !== undefined)
              this.set({ job_id: f.jobId, job_name: f.jobName, level }, value(c));
          }
      },
    });
  };
  perLevel(
    'cube_job_checkpoint_age_seconds',
    'Seconds since the job last committed a checkpoint at the level',
    (c) => Math.max(0, (now() - c.at) / 1000),
  );
  perLevel(
    'cube_job_checkpoint_step',
    'The step of the checkpoint the job committed last at the level',
    (c) => c.step,
  );
}
