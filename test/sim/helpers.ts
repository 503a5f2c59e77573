import type { FailureModel, SimJob, SimPolicy } from '../../src/sim/index.ts';

/** Four nodes of 8 GPUs, two per switch: node i replicates to node (i + 2) mod 4. */
export const smallJob: SimJob = {
  name: 'hand',
  stepTimeS: 10,
  gpus: 32,
  gpusPerNode: 8,
  nodes: 4,
  nodesPerSwitch: 2,
  switchesPerGroup: 1,
  checkpointBytesPerGpu: 1e9,
  snapshotGBsPerGpu: 1,
  nicGBsPerNode: 1,
};

/**
 * Snapshots every 6 steps (60 s of training) with a 2 s stall; every snapshot replicated to L2
 * (5 s), every 5th persisted to L3 (7 s); no interference, so times are easy to add up by hand.
 */
export const handPolicy: SimPolicy = {
  name: 'hand',
  intervalSteps: 6,
  intervalS: 60,
  intervalReason: '6 steps',
  l1: { stallS: 2, restoreS: 1 },
  l2: { every: 1, writeS: 5, slowdown: 0, restoreS: 3 },
  l3: { every: 5, writeS: 7, slowdown: 0, blocking: false, restoreS: 7 },
  spareNodes: 2,
  recovery: {
    cordonS: 1,
    spareSwapS: 2,
    restartS: 10,
    humanResponseS: 100,
    repeatWindowS: 3600,
  },
};

/** No random failures at all; detection latencies that are easy to add. */
export const quietModel: FailureModel = {
  name: 'quiet',
  sources: [],
  detection: {
    crashS: 5,
    heartbeatTimeoutS: 15,
    hangTimeoutS: 120,
    probeIntervalS: 30,
    silentCheckIntervalS: 600,
  },
  classes: [],
};
