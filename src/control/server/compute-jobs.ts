import { CubeError } from '../../core/index.ts';
import { defaultCluster, getAccelerator } from '../../hardware/index.ts';
import { planJob, type Plan, type PlanPins } from '../../plan/index.ts';
import {
  defaultFailureModel,
  defaultPolicySpec,
  jobFromPlan,
  parsePolicies,
  resolvePolicy,
  runMonteCarlo,
  simulationReport,
} from '../../sim/index.ts';
import { getModel } from '../../zoo/index.ts';

/** What `POST /api/v1/plan` asks (validated by the route). Models are zoo ids only. */
export interface PlanInput {
  readonly model: string;
  readonly accelerator: string;
  readonly gpus: number;
  readonly seqLen?: number;
  readonly globalBatch?: number;
  readonly pins?: PlanPins;
  readonly top?: number;
}

/** What `POST /api/v1/simulate` asks (validated by the route). */
export interface SimulateInput extends PlanInput {
  readonly days: number;
  readonly trials: number;
  readonly seed: number;
  /** Policies side by side, as in a `--compare` file; the first is the baseline. */
  readonly policies?: readonly unknown[];
}

/** The contract form of a plan (as `cube plan --json`): scaling efficiency null when unknown. */
function planJson(p: Plan): Record<string, unknown> {
  return {
    ...p,
    scalingEfficiency: Number.isFinite(p.scalingEfficiency) ? p.scalingEfficiency : null,
  };
}

function request(input: PlanInput) {
  const model = getModel(input.model, { field: 'model' });
  getAccelerator(input.accelerator, { field: 'accelerator' });
  const cluster = defaultCluster({ accelerator: input.accelerator, gpus: input.gpus });
  return {
    model,
    cluster,
    ...(input.seqLen === undefined ? {} : { seqLen: input.seqLen }),
    ...(input.globalBatch === undefined ? {} : { globalBatch: input.globalBatch }),
    ...(input.pins === undefined ? {} : { pins: input.pins }),
  };
}

/** `planJob` for the API, answering what `cube plan --json` prints. */
export function runPlan(input: PlanInput): Record<string, unknown> {
  const result = planJob({ ...request(input), top: input.top ?? 10 });
  return {
    model: result.model,
    accelerator: result.accelerator,
    gpus: result.gpus,
    seqLen: result.seqLen,
    globalBatch: result.globalBatch,
    plans: result.plans.map(planJson),
    ...(result.reason === null ? {} : { reason: result.reason }),
  };
}

/**
 * A simulation as `cube simulate --json` runs it (the planner's best plan, the default
 * failure model, the given policies side by side), answering its report.
 */
export function runSimulation(input: SimulateInput): Record<string, unknown> {
  const planRequest = request(input);
  const specs =
    input.policies === undefined
      ? [defaultPolicySpec]
      : parsePolicies({ policies: input.policies }, 'policies');
  const planned = planJob({ ...planRequest, top: 1 });
  const plan = planned.plans[0] ?? null;
  if (plan === null)
    throw new CubeError(
      'INFEASIBLE',
      `no plan fits ${input.model} on ${input.gpus} x ${input.accelerator}: ${planned.reason ?? 'no reason given'}`,
      { where: { field: 'gpus' }, hint: 'use more GPUs or pin other plan dimensions' },
    );
  const { job, source } = jobFromPlan(planRequest.model, planRequest.cluster, plan);
  const model = defaultFailureModel;
  const options = { days: input.days, trials: input.trials, seed: input.seed };
  const results = specs.map((spec) =>
    runMonteCarlo(job, resolvePolicy(spec, job, model), model, options),
  );
  return simulationReport(
    {
      model: input.model,
      accelerator: input.accelerator,
      gpus: job.gpus,
      nodes: job.nodes,
      days: input.days,
      trials: input.trials,
      seed: input.seed,
      stepTimeS: job.stepTimeS,
      stepTimeSource: source.stepTime,
      checkpointBytesPerGpu: job.checkpointBytesPerGpu,
      checkpointSource: "the plan's sharding",
      plan: {
        tp: plan.tp,
        pp: plan.pp,
        vpp: plan.vpp,
        dp: plan.dp,
        cp: plan.cp,
        ep: plan.ep,
        zero: plan.zero,
        microBatch: plan.microBatch,
        recompute: plan.recompute,
        offload: plan.offload,
        memoryGiB: plan.memoryGiB,
        stepTimeS: plan.stepTimeS,
        mfu: plan.mfu,
      },
      failureModel: model.name,
    },
    results,
  );
}
