import { CubeError } from '../core/index.ts';
import { defaultCluster } from '../hardware/index.ts';
import { totalParams, type ModelArchitecture } from '../zoo/index.ts';
import { planContext, type PlanContext } from './context.ts';
import { search, tpFitsHeads, type SearchOutcome } from './search.ts';
import type {
  Plan,
  PlanPins,
  PlanRequest,
  PlanResult,
  Precision,
  SoftwareProfileId,
} from './types.ts';

/** Sequence length when none is given (capped by the model's maximum positions). */
export const defaultSeqLen = 4096;

/**
 * Global batch (sequences) when none is given: 1,024 sequences (4M tokens at 4,096), or a
 * quarter of a sequence per GPU on very large clusters, rounded up to a power of two and then
 * to a multiple of the GPU count's odd factor so data parallelism can divide it.
 */
export function defaultGlobalBatch(gpus: number): number {
  let odd = gpus;
  while (odd % 2 === 0) odd /= 2;
  const base = Math.max(1024, 2 ** Math.ceil(Math.log2(Math.max(1, gpus / 4))));
  return Math.ceil(base / odd) * odd;
}

/** The resolved inputs of a request. */
export interface ResolvedRequest {
  readonly ctx: PlanContext;
  readonly pins: PlanPins;
  readonly top: number;
}

function bad(message: string, field: string, hint?: string): CubeError {
  return new CubeError('INVALID_VALUE', message, {
    where: { field },
    ...(hint === undefined ? {} : { hint }),
  });
}

function positiveInt(value: number | undefined, field: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value <= 0))
    throw bad(`${field} must be a positive integer, got ${value}`, field);
}

/**
 * Checks the request and the pins against the model and the cluster; impossible layouts fail
 * with INVALID_VALUE (exit 2) naming the constraint.
 */
export function resolveRequest(request: PlanRequest): ResolvedRequest {
  const model = request.model;
  const cluster = request.cluster;
  const gpus = cluster.deviceCount;
  const pins = request.pins ?? {};
  const maxPos = model.maxPositionEmbeddings ?? defaultSeqLen;
  const seqLen = request.seqLen ?? Math.min(defaultSeqLen, maxPos);
  positiveInt(request.seqLen, '--seq-len');
  positiveInt(request.globalBatch, '--global-batch');
  positiveInt(request.top, '--top');
  const globalBatch = request.globalBatch ?? defaultGlobalBatch(gpus);
  for (const key of ['tp', 'pp', 'vpp', 'cp', 'ep', 'microBatch'] as const)
    positiveInt(pins[key], flagOf(key));
  if (pins.zero !== undefined && ![0, 1, 2, 3].includes(pins.zero))
    throw bad(`--zero must be 0, 1, 2 or 3, got ${pins.zero}`, '--zero');
  const precision: Precision = request.precision ?? 'bf16';
  const software: SoftwareProfileId = request.software ?? 'modern';
  const ctx = planContext({ model, cluster, seqLen, globalBatch, precision, software });
  const L = model.layers.length;
  const heads = model.numAttentionHeads;

  if (precision === 'fp8') {
    const without = cluster.runs.find((r) => r.accelerator.peakTflops.fp8 === null);
    if (without !== undefined)
      throw bad(
        `--precision fp8: the ${without.accelerator.id} has no fp8 matrix path`,
        '--precision',
        'use bf16 on this cluster',
      );
  }
  const { tp, pp, vpp, cp, ep, microBatch } = pins;
  if (tp !== undefined) {
    if (!tpFitsHeads(ctx, tp))
      throw bad(
        `--tp ${tp} does not divide the ${heads} attention heads (${model.numKeyValueHeads} key/value heads) of ${model.id}`,
        '--tp',
        `choose a tp that divides ${heads}`,
      );
    if (gpus % tp !== 0) throw bad(`--tp ${tp} does not divide the ${gpus} GPUs`, '--tp');
  }
  if (pp !== undefined && pp > L)
    throw bad(`--pp ${pp} is larger than the ${L} layers of ${model.id}`, '--pp');
  if (vpp !== undefined && vpp > 1) {
    if (pp === undefined || pp === 1)
      throw bad('--vpp above 1 needs pipeline parallelism (--pp 2 or more)', '--vpp');
    if (pp * vpp > L + 2)
      throw bad(
        `--pp ${pp} x --vpp ${vpp} = ${pp * vpp} model chunks are more than the ${L} layers of ${model.id} can fill`,
        '--vpp',
      );
  }
  if (ep !== undefined && ep > 1) {
    const experts = ctx.profile.experts;
    if (experts === 0)
      throw bad(`--ep ${ep}: ${model.id} has no experts (not an MoE model)`, '--ep');
    if (experts % ep !== 0)
      throw bad(`--ep ${ep} does not divide the ${experts} experts of ${model.id}`, '--ep');
  }
  if (cp !== undefined && cp > 1) {
    if (seqLen % cp !== 0)
      throw bad(`--cp ${cp} does not divide the sequence length ${seqLen}`, '--cp');
    if (!ctx.software.flashAttention)
      throw bad(
        'context parallelism needs fused (flash) attention, which this software profile lacks',
        '--cp',
      );
  }
  const product = (tp ?? 1) * (pp ?? 1) * (cp ?? 1);
  if (gpus % product !== 0)
    throw bad(
      `tp ${tp ?? 1} x pp ${pp ?? 1} x cp ${cp ?? 1} = ${product} does not divide the ${gpus} GPUs`,
      '--tp',
    );
  if (tp !== undefined && pp !== undefined && cp !== undefined) {
    const dp = gpus / product;
    if (ep !== undefined && dp % ep !== 0)
      throw bad(`--ep ${ep} does not divide the data-parallel degree ${dp}`, '--ep');
    if (globalBatch % dp !== 0)
      throw bad(
        `the global batch ${globalBatch} is not a multiple of the data-parallel degree ${dp}`,
        '--global-batch',
      );
    if (microBatch !== undefined && globalBatch % (dp * microBatch) !== 0)
      throw bad(
        `the global batch ${globalBatch} does not split into micro-batches of ${microBatch} over dp ${dp}`,
        '--micro-batch',
      );
  }
  if (pins.offload === 'all' && pins.zero !== undefined && pins.zero !== 3)
    throw bad('--offload all moves the weights to the host, which needs --zero 3', '--offload');
  return { ctx, pins, top: request.top ?? 10 };
}

function flagOf(key: string): string {
  return key === 'microBatch' ? '--micro-batch' : `--${key}`;
}

function describe(
  p: Pick<
    Plan,
    'tp' | 'pp' | 'vpp' | 'cp' | 'ep' | 'zero' | 'recompute' | 'offload' | 'microBatch'
  >,
): string {
  return `tp${p.tp} pp${p.pp}${p.vpp > 1 ? `x${p.vpp}` : ''}${p.cp > 1 ? ` cp${p.cp}` : ''}${p.ep > 1 ? ` ep${p.ep}` : ''} zero${p.zero} recompute ${p.recompute} offload ${p.offload} micro-batch ${p.microBatch}`;
}

/** Why nothing fits, with what the smallest plan needs and what to change. */
export function infeasibleReason(ctx: PlanContext, outcome: SearchOutcome): string {
  const name = `${ctx.profile.model.id} on ${ctx.gpus} x ${ctx.cluster.runs.map((r) => r.accelerator.id).join('+')}`;
  const closest = outcome.closest;
  if (closest === null) {
    const why = [...outcome.constraints].slice(0, 3).join('; ');
    return `no layout of ${name} satisfies the constraints${why === '' ? '' : `: ${why}`}`;
  }
  const mem = closest.why.memory ?? {};
  const peak = closest.why.peakBytes ?? 0;
  const cap = closest.why.capacityBytes ?? 1;
  const state = (mem['weights'] ?? 0) + (mem['gradients'] ?? 0) + (mem['optimizer'] ?? 0);
  const fixed = peak - state * 1.05;
  const gib = 1024 ** 3;
  const c = closest.candidate;
  let advice: string;
  if (fixed >= cap)
    advice =
      'activations and buffers alone exceed the memory: shorten --seq-len, add context parallelism (--cp) or a bigger --tp';
  else if (closest.why.term === 'activations')
    advice =
      'activations are the largest term: allow recomputation (--recompute full), a smaller --micro-batch, context parallelism (--cp) or more pipeline stages';
  else {
    const perServer = Math.min(...ctx.cluster.runs.map((r) => r.devicesPerServer));
    const need = Math.ceil((ctx.gpus * (state * 1.05)) / (cap - fixed) / perServer) * perServer;
    advice = `model state (${(state / gib).toFixed(1)} GiB per GPU) shrinks with more GPUs: use at least ~${need} GPUs, or accelerators with more memory`;
  }
  return `${name} fits no configuration: the smallest plan (${describe(c)}) needs ${(peak / gib).toFixed(1)} GiB per GPU but the GPU has ${(cap / gib).toFixed(0)} GiB (largest term: ${closest.why.term}); ${advice}`;
}

const referenceCache = new WeakMap<ModelArchitecture, Map<string, number>>();

/**
 * The throughput perfect scaling would give this cluster: for each of its runs of servers, its
 * GPU count times the tokens/s per GPU of the best plan for the same model, batch and recompute
 * choice on one server of that accelerator (or the fewest servers, doubling, that hold the
 * model). On a homogeneous cluster that is GPUs x the one-server rate.
 */
export function referenceThroughput(request: PlanRequest, resolved: ResolvedRequest): number {
  let total = 0;
  for (const run of resolved.ctx.cluster.runs)
    total += run.count * run.devicesPerServer * referencePerGpu(request, resolved, run);
  return total;
}

function referencePerGpu(
  request: PlanRequest,
  resolved: ResolvedRequest,
  run: PlanContext['cluster']['runs'][number],
): number {
  const { ctx } = resolved;
  const key = [
    run.accelerator.id,
    ctx.seqLen,
    ctx.globalBatch,
    ctx.precision,
    ctx.software.id,
    resolved.pins.recompute ?? '',
  ].join('|');
  let cache = referenceCache.get(request.model);
  if (cache === undefined) {
    cache = new Map();
    referenceCache.set(request.model, cache);
  }
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const perServer = run.model.acceleratorsPerServer;
  // Start where the model state alone can fit: 16 bytes per parameter (bf16 weights and grads,
  // fp32 master and moments) fully sharded must take under 90% of the memory. Searching
  // smaller clusters would only find that nothing fits.
  const stateBytes = 16 * totalParams(request.model);
  const capacity = run.accelerator.memoryGiB * 1024 ** 3 * 0.9;
  let start = Math.min(ctx.gpus, perServer);
  while (start < ctx.gpus && stateBytes / start > capacity) start *= 2;
  let value = Number.NaN;
  for (let gpus = Math.min(start, ctx.gpus); gpus <= ctx.gpus; gpus *= 2) {
    const refRequest: PlanRequest = {
      model: request.model,
      cluster: defaultCluster({ accelerator: run.accelerator.id, gpus }),
      seqLen: ctx.seqLen,
      globalBatch: ctx.globalBatch,
      precision: ctx.precision,
      software: ctx.software.id,
      pins: resolved.pins.recompute === undefined ? {} : { recompute: resolved.pins.recompute },
    };
    const refCtx = resolveRequest(refRequest);
    const outcome = search(refCtx.ctx, refCtx.pins, { keep: 1 });
    const best = outcome.plans[0];
    if (best !== undefined) {
      value = best.tokensPerS / gpus;
      break;
    }
    if (gpus === ctx.gpus) break;
    if (gpus * 2 > ctx.gpus) gpus = ctx.gpus / 2;
  }
  cache.set(key, value);
  return value;
}

/**
 * Plans a training job: searches the parallel layouts for the model on the cluster and returns
 * the best plans first, each with its memory and step-time breakdown. Invalid pins throw
 * INVALID_VALUE; a model that fits nothing returns no plans and the reason.
 */
export function planJob(request: PlanRequest): PlanResult {
  const resolved = resolveRequest(request);
  const { ctx, pins, top } = resolved;
  const outcome = search(ctx, pins, { keep: top });
  return resultOf(request, resolved, outcome, top);
}

/** Turns a search outcome into the result (top plans with scaling efficiency, or the reason). */
export function resultOf(
  request: PlanRequest,
  resolved: ResolvedRequest,
  outcome: SearchOutcome,
  top: number,
): PlanResult {
  const { ctx } = resolved;
  const plans = outcome.plans.slice(0, top);
  let withScaling: Plan[] = plans;
  if (plans.length > 0 && request.skipScaling !== true) {
    const ref = referenceThroughput(request, resolved);
    withScaling = plans.map((p) => ({ ...p, scalingEfficiency: p.tokensPerS / ref }));
  }
  return {
    model: ctx.profile.model.id,
    accelerator: [...new Set(ctx.cluster.runs.map((r) => r.accelerator.id))].join('+'),
    gpus: ctx.gpus,
    seqLen: ctx.seqLen,
    globalBatch: ctx.globalBatch,
    plans: withScaling,
    reason: plans.length > 0 ? null : infeasibleReason(ctx, outcome),
  };
}
