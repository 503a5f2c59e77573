import type { PolicyResult } from './monte-carlo.ts';

/** What the report says about the run besides the per-policy results. */
export interface ReportHeader {
  readonly model: string;
  readonly accelerator: string | null;
  readonly gpus: number;
  readonly nodes: number;
  readonly days: number;
  readonly trials: number;
  readonly seed: number;
  readonly stepTimeS: number;
  readonly stepTimeSource: string;
  readonly checkpointBytesPerGpu: number;
  readonly checkpointSource: string;
  readonly plan: Readonly<Record<string, unknown>> | null;
  readonly failureModel: string;
}

/**
 * The `cube simulate --json` document. The contract keys (design.md) come first, exactly as
 * specified, from the first (baseline) policy; everything else is added beside them: `policy`
 * holds the baseline's full result (lost time also to waiting and interference, intervals,
 * progress curve), `policies` every compared policy's.
 */
export function simulationReport(
  header: ReportHeader,
  results: readonly PolicyResult[],
): Record<string, unknown> {
  const base = results[0];
  if (base === undefined) throw new Error('a report needs at least one policy result');
  return {
    model: header.model,
    gpus: header.gpus,
    days: header.days,
    trials: header.trials,
    goodput: { mean: base.goodput.mean, p5: base.goodput.p5, p95: base.goodput.p95 },
    interruptions: {
      mean: base.interruptions.mean,
      p2_5: base.interruptions.p2_5,
      p97_5: base.interruptions.p97_5,
      byCause: base.interruptions.byCause,
    },
    humanInterventions: { mean: base.humanInterventions.mean },
    lostHours: {
      detection: base.lostHours.detection,
      restart: base.lostHours.restart,
      restore: base.lostHours.restore,
      recompute: base.lostHours.recompute,
      checkpointStall: base.lostHours.checkpointStall,
    },
    pNoFault: base.pNoFault,
    pNoHuman: base.pNoHuman,
    longestFaultFreeHours: base.longestFaultFreeHours.mean,
    accelerator: header.accelerator,
    nodes: header.nodes,
    seed: header.seed,
    stepTimeS: header.stepTimeS,
    stepTimeSource: header.stepTimeSource,
    checkpointBytesPerGpu: header.checkpointBytesPerGpu,
    checkpointSource: header.checkpointSource,
    plan: header.plan,
    failureModel: header.failureModel,
    policy: base,
    policies: results,
  };
}
