import type { DetectionKind, FailureModel, FailureScope } from './failure-model.ts';

/**
 * The default failure model, calibrated to the one public root-cause table of a large training
 * run: Llama 3 405B pre-training, a 54-day snapshot on 16,384 H100 GPUs with 466 job
 * interruptions (47 planned, 419 unexpected), "The Llama 3 Herd of Models" (Dubey et al.,
 * arXiv 2407.21783), §3.3.4, Table 5.
 *
 * Each count becomes a per-unit rate: count / (units × 54 × 24 h), with
 * - 16,384 GPUs in 2,048 hosts of 8 (Grand Teton / HGX H100 servers);
 * - 1,024 top-of-rack switches: each rack holds 16 GPUs in two servers under one Minipack2 ToR
 *   (§3.3.1), so a ToR failure there takes down 2 hosts. Cube applies the per-switch rate to the
 *   tier-1 switches of the simulated cluster, and a failure takes down every node below it.
 * Rates are per unit of wall-clock time of the snapshot (the table does not say how long the job
 * was down), so a simulated 54-day run on the same cluster draws the published counts.
 *
 * Assumptions where the table is silent (all marked in `description`):
 * - "Network switch/cable" (35) is split 28 cable or optics (takes one host's link down) and
 *   7 switch (takes down the group below); the paper gives no split.
 * - Software bugs and NCCL watchdog timeouts scale with the ranks (one rate per rank): a job of
 *   1/16th the size sees 1/16th of them. Planned maintenance is per host (a rolling upgrade
 *   stops the job for each host it touches; the job checkpoints first and restarts in place).
 *   Dependencies (an external service) keep one rate per job whatever its size.
 * - Scope and detection per cause follow what each fault does to a synchronous job; repair times
 *   are typical swap times, not published.
 */
const snapshotHours = 54 * 24;
const units: Record<FailureScope, number> = {
  gpu: 16_384,
  host: 2_048,
  switch: 1_024,
  rank: 16_384,
  job: 1,
};

interface Row {
  readonly cause: string;
  readonly count: number;
  readonly scope: FailureScope;
  readonly detection: DetectionKind;
  readonly repairHours: number;
  readonly description: string;
}

const rows: readonly Row[] = [
  {
    cause: 'faulty-gpu',
    count: 148,
    scope: 'gpu',
    detection: 'crash',
    repairHours: 48,
    description: 'Table 5 "Faulty GPU" (GPU failures including NVLink); node swapped, GPU replaced',
  },
  {
    cause: 'gpu-hbm',
    count: 72,
    scope: 'gpu',
    detection: 'crash',
    repairHours: 48,
    description: 'Table 5 "GPU HBM3 Memory"',
  },
  {
    cause: 'software-bug',
    count: 54,
    scope: 'rank',
    detection: 'crash',
    repairHours: 0,
    description: 'Table 5 "Software Bug"; per rank; restarts in place',
  },
  {
    cause: 'network-cable',
    count: 28,
    scope: 'host',
    detection: 'hang',
    repairHours: 4,
    description:
      'Table 5 "Network Switch/Cable" (35), the assumed 80% that are cables or optics: one host loses its link',
  },
  {
    cause: 'network-switch',
    count: 7,
    scope: 'switch',
    detection: 'hang',
    repairHours: 8,
    description:
      'Table 5 "Network Switch/Cable" (35), the assumed 20% that are switches: every node below is lost',
  },
  {
    cause: 'host-maintenance',
    count: 32,
    scope: 'host',
    detection: 'crash',
    repairHours: 12,
    description: 'Table 5 "Host Maintenance" (unplanned): the host is drained and the job killed',
  },
  {
    cause: 'gpu-sram',
    count: 19,
    scope: 'gpu',
    detection: 'crash',
    repairHours: 48,
    description: 'Table 5 "GPU SRAM Memory"',
  },
  {
    cause: 'gpu-system-processor',
    count: 17,
    scope: 'gpu',
    detection: 'crash',
    repairHours: 48,
    description: 'Table 5 "GPU System Processor"',
  },
  {
    cause: 'nic',
    count: 7,
    scope: 'host',
    detection: 'hang',
    repairHours: 12,
    description: 'Table 5 "NIC"',
  },
  {
    cause: 'nccl-watchdog-timeout',
    count: 7,
    scope: 'rank',
    detection: 'hang',
    repairHours: 0,
    description: 'Table 5 "NCCL Watchdog Timeouts"; per rank; no hardware found at fault',
  },
  {
    cause: 'silent-data-corruption',
    count: 6,
    scope: 'gpu',
    detection: 'silent',
    repairHours: 48,
    description:
      'Table 5 "Silent Data Corruption": found later by checks; poisons later checkpoints',
  },
  {
    cause: 'gpu-thermal-sensor',
    count: 6,
    scope: 'gpu',
    detection: 'probe',
    repairHours: 24,
    description: 'Table 5 "GPU Thermal Interface + Sensor"; found by the health probe',
  },
  {
    cause: 'ssd',
    count: 3,
    scope: 'host',
    detection: 'crash',
    repairHours: 12,
    description: 'Table 5 "SSD"',
  },
  {
    cause: 'power-supply',
    count: 3,
    scope: 'host',
    detection: 'heartbeat',
    repairHours: 12,
    description: 'Table 5 "Power Supply"; the host goes dark',
  },
  {
    cause: 'server-chassis',
    count: 2,
    scope: 'host',
    detection: 'heartbeat',
    repairHours: 24,
    description: 'Table 5 "Server Chassis"',
  },
  {
    cause: 'io-expansion-board',
    count: 2,
    scope: 'host',
    detection: 'heartbeat',
    repairHours: 24,
    description: 'Table 5 "IO Expansion Board"',
  },
  {
    cause: 'dependency',
    count: 2,
    scope: 'job',
    detection: 'crash',
    repairHours: 0,
    description: 'Table 5 "Dependency" (an external service the job needs)',
  },
  {
    cause: 'cpu',
    count: 2,
    scope: 'host',
    detection: 'heartbeat',
    repairHours: 24,
    description: 'Table 5 "CPU"',
  },
  {
    cause: 'system-memory',
    count: 2,
    scope: 'host',
    detection: 'heartbeat',
    repairHours: 12,
    description: 'Table 5 "System Memory"',
  },
  {
    cause: 'planned-maintenance',
    count: 47,
    scope: 'host',
    detection: 'planned',
    repairHours: 0,
    description:
      '§3.3.4: 47 planned interruptions (automated maintenance); per host: a rolling upgrade stops the job for each host it touches',
  },
];

/** The published counts of the calibration run, by cause (for tests and documentation). */
export const llama3Calibration = {
  gpus: 16_384,
  hosts: 2_048,
  torSwitches: 1_024,
  days: 54,
  interruptions: 466,
  planned: 47,
  unexpected: 419,
  significantManualInterventions: 3,
  counts: Object.fromEntries(rows.map((r) => [r.cause, r.count])) as Readonly<
    Record<string, number>
  >,
} as const;

/** The documented default model (see the module comment for its derivation). */
export const defaultFailureModel: FailureModel = {
  name: 'llama3-16k-h100',
  description:
    'Per-component rates derived from the interruption root causes of a 54-day, 16,384-GPU Llama 3 405B pre-training snapshot',
  sources: [
    'A. Dubey et al., "The Llama 3 Herd of Models", arXiv 2407.21783 (2024), §3.3.4 and Table 5: 466 interruptions in 54 days on 16,384 H100 (47 planned, 419 unexpected, root causes by count)',
    'Same paper, §3.3.1: 16 GPUs per rack in two servers under one Minipack2 ToR switch (1,024 ToRs for 16,384 GPUs)',
    'Detection latencies: the Cube control plane defaults (heartbeat timeout 5 s, hang timeout 120 s in the job spec; agent probe every 5 s; a rank exit is seen within one heartbeat of 1 s) rounded up for a 2,000-node control plane; silent-corruption check interval assumed 6 h',
  ],
  detection: {
    crashS: 5,
    heartbeatTimeoutS: 15,
    hangTimeoutS: 120,
    probeIntervalS: 30,
    silentCheckIntervalS: 6 * 3600,
  },
  classes: rows.map((r) => ({
    cause: r.cause,
    scope: r.scope,
    detection: r.detection,
    ratePerUnitHour: r.count / (units[r.scope] * snapshotHours),
    repairHours: r.repairHours,
    description: r.description,
  })),
};
