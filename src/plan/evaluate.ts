import { nonLayerActivationBytes } from '../zoo/index.ts';
import type { PlanContext } from './context.ts';
import { gemmSeconds, memoryBoundSeconds } from './kernels.ts';
import { balanceStages, evenSplit, type StageDevice } from './layout.ts';
import { layerSeconds, type LayerSeconds, type WorkShape } from './layer-cost.ts';
import type { Offload, Plan, Recompute } from './types.ts';

/** One point of the search space (dp follows from the others). */
export interface Candidate {
  readonly tp: number;
  readonly pp: number;
  readonly vpp: number;
  readonly cp: number;
  readonly ep: number;
  readonly dp: number;
  readonly sp: boolean;
  readonly zero: 0 | 1 | 2 | 3;
  readonly microBatch: number;
  readonly recompute: Recompute;
  readonly offload: Offload;
}

/** Why a candidate was rejected: the memory term that overflowed, or another constraint. */
export interface Rejection {
  readonly kind: 'memory' | 'host-memory' | 'constraint';
  readonly message: string;
  /** For memory: the biggest term and the peak it reached, bytes, on the worst stage. */
  readonly term?: string;
  readonly peakBytes?: number;
  readonly capacityBytes?: number;
  readonly memory?: Readonly<Record<string, number>>;
}

export type Evaluation =
  | { readonly kind: 'plan'; readonly plan: Plan }
  | { readonly kind: 'rejected'; readonly why: Rejection }
  /** Its compute alone is slower than the bound the caller gave. */
  | { readonly kind: 'pruned' };

const gib = 1024 ** 3;
/** CUDA context, cuBLAS and NCCL workspaces, per GPU. */
export const runtimeBytes = 1 * gib;
/** Allocator fragmentation, as a share of everything else. */
export const fragmentationShare = 0.05;
/** Parameters per second one GPU's share of the host CPUs updates with a vectorised Adam (estimate). */
export const cpuAdamParamsPerS = 1e9;
/** Share of host memory offloaded state may take. */
export const hostMemoryShare = 0.8;

interface StageWork {
  /** Layer indices of the stage (all chunks). */
  readonly layers: readonly number[];
  readonly device: StageDevice;
  readonly isFirst: boolean;
  readonly isLast: boolean;
}

/** Which layers each stage holds: uneven (balanced) for one chunk, even chunks round-robin for vpp > 1. */
function assignLayers(
  ctx: PlanContext,
  c: Candidate,
  devices: readonly StageDevice[],
  layerRow: (device: StageDevice) => Float64Array,
  extras: readonly number[],
): number[][] {
  const L = ctx.profile.layers;
  const p = c.pp;
  const stages: number[][] = Array.from({ length: p }, () => []);
  if (c.vpp > 1) {
    // Chunk j runs on stage j mod p. Chunks are as even as possible; the smaller ones go to the
    // first and last chunks (they also carry the embedding and the head).
    const chunks = p * c.vpp;
    const sizes = evenSplit(L, chunks).sort((a, b) => a - b);
    const ordered = new Array<number>(chunks).fill(0);
    let lo = 0;
    let hi = chunks - 1;
    sizes.forEach((size, i) => {
      if (i % 2 === 0) ordered[lo++] = size;
      else ordered[hi--] = size;
    });
    const mid = ordered.slice(1, -1).sort((a, b) => b - a);
    const layout = [ordered[0] ?? 0, ...mid, ordered[chunks - 1] ?? 0];
    let at = 0;
    layout.forEach((size, j) => {
      for (let n = 0; n < size; n += 1) stages[j % p]?.push(at + n);
      at += size;
    });
    return stages;
  }
  const counts =
    p === 1
      ? [L]
      : balanceStages(
          devices.map((d) => layerRow(d)),
          extras,
          p,
        );
  let at = 0;
  counts.forEach((n, k) => {
    for (let j = 0; j < n; j += 1) stages[k]?.push(at + j);
    at += n;
  });
  return stages.every((s) => s.length > 0)
    ? stages
    : evenSplit(L, p).map((n, k, all) => {
        const start = all.slice(0, k).reduce((a, b) => a + b, 0);
        return Array.from({ length: n }, (_, j) => start + j);
      });
}

/**
 * Evaluates one candidate: memory on every stage first (rejecting what does not fit, with the
 * term that overflowed), then the step time from compute, exposed communication, bubble,
 * optimizer and offload.
 */
export function evaluateCandidate(
  ctx: PlanContext,
  c: Candidate,
  options: { readonly boundS?: number } = {},
): Evaluation {
  const prof = ctx.profile;
  const sw = ctx.software;
  const devices = ctx.stages(c.pp);
  if (devices === null)
    return {
      kind: 'rejected',
      why: { kind: 'constraint', message: `an accelerator has no ${ctx.precision} path` },
    };
  const t = c.tp;
  const h = prof.hidden;
  const s = ctx.seqLen;
  const m = ctx.globalBatch / (c.dp * c.microBatch);
  const tokens = (c.microBatch * s) / c.cp;
  const shape: WorkShape = {
    tp: t,
    sp: c.sp,
    microBatch: c.microBatch,
    seqLen: s,
    cp: c.cp,
    ep: c.ep,
    recompute: c.recompute,
  };

  // Layer costs per device type and layer kind, and each type's per-layer seconds (what the
  // stage balancing reads). They depend on the work shape only, so the ZeRO/offload steps of one
  // layout share them (memoised on the context).
  const shapeKey = `${t}|${c.sp}|${c.microBatch}|${c.cp}|${c.ep}|${c.recompute}`;
  const kindCosts = (d: StageDevice): LayerSeconds[] =>
    ctx.memo(`costs|${shapeKey}|${d.speed.accelerator.id}`, () =>
      prof.kinds.map((k) => layerSeconds(k, d.speed, shape, sw, h, prof.normsPerLayer)),
    );
  const layerRow = (d: StageDevice): Float64Array =>
    ctx.memo(`row|${shapeKey}|${d.speed.accelerator.id}`, () => {
      const costs = kindCosts(d);
      const row = new Float64Array(prof.layers);
      for (let i = 0; i < prof.layers; i += 1) {
        const lc = costs[prof.layerKind[i] ?? 0];
        row[i] = lc === undefined ? 0 : lc.forward + lc.backward;
      }
      return row;
    });
  // The head (a vocab-wide GEMM and the fp32 cross-entropy) and the embedding gather.
  const headSeconds = (d: StageDevice): number => {
    const vt = Math.ceil(prof.vocab / t);
    const gemm = gemmSeconds(d.speed, tokens, vt, h);
    const loss = memoryBoundSeconds(d.speed, 16 * tokens * vt, 4);
    return 3 * gemm + loss;
  };
  const embedSeconds = (d: StageDevice): number =>
    memoryBoundSeconds(d.speed, 8 * tokens * h * (c.sp ? 1 / t : 1), 3);
  const extras = devices.map(
    (d, k) => (k === 0 ? embedSeconds(d) : 0) + (k === c.pp - 1 ? headSeconds(d) : 0),
  );
  const stageLayers = ctx.memo(`stages|${shapeKey}|${c.pp}|${c.vpp}`, () =>
    assignLayers(ctx, c, devices, layerRow, extras),
  );
  if (options.boundS !== undefined) {
    // A lower bound: the bottleneck stage's compute and tensor-parallel traffic for every
    // micro-batch plus the pipeline bubble, nothing else. A candidate that cannot beat the
    // bound is not priced further.
    let slowest = 0;
    let sumStages = 0;
    stageLayers.forEach((layers, k) => {
      const d = devices[k] ?? devices[0];
      if (d === undefined) return;
      const costs = kindCosts(d);
      const row = layerRow(d);
      const tpOne = ctx.comm.collective('all-reduce', tokens * h * 2, d.firstDevice, 1, t);
      let sum = extras[k] ?? 0;
      for (const i of layers)
        sum += (row[i] ?? 0) + (costs[prof.layerKind[i] ?? 0]?.tpCollectives ?? 0) * tpOne;
      slowest = Math.max(slowest, sum);
      sumStages += sum;
    });
    const bubbleLow = ((c.pp - 1) / c.vpp) * (sumStages / c.pp);
    if (m * slowest + bubbleLow >= options.boundS) return { kind: 'pruned' };
  }
  const stages: StageWork[] = stageLayers.map((layers, k) => ({
    layers,
    device: devices[k] ?? (devices[0] as StageDevice),
    isFirst: k === 0,
    isLast: k === c.pp - 1,
  }));

  // ---- memory ----
  const r = ctx.recipe;
  const dpShard = c.dp * c.cp;
  const expertShard = Math.max(1, dpShard / c.ep);
  const storedRecompute: Recompute =
    c.recompute === 'none' && sw.flashAttention ? 'selective' : c.recompute;
  const actOptions = {
    seqLen: s / c.cp,
    microBatch: c.microBatch,
    tp: t,
    sp: c.sp,
    dropout: sw.dropout,
  } as const;
  const perLayerAct = ctx.activations({ ...actOptions, recompute: storedRecompute });
  const fullAct =
    c.recompute === 'full'
      ? ctx.activations({ ...actOptions, recompute: sw.flashAttention ? 'selective' : 'none' })
      : perLayerAct;
  const logits = nonLayerActivationBytes(prof.model, actOptions);
  const largestLayerParams = Math.max(
    ...prof.kinds.map((k) => k.denseParams / t + k.expertParams / (t * c.ep)),
  );

  let worst: { total: number; memory: Record<string, number>; k: number } | null = null;
  let checkpointBytes = 0;
  let maxDenseParams = 0;
  let maxExpertParams = 0;
  let maxHostBytes = 0;
  for (let k = 0; k < stages.length; k += 1) {
    const st = stages[k] as StageWork;
    let dense = 0;
    let expert = 0;
    let act = 0;
    let working = 0;
    for (const i of st.layers) {
      const kind = prof.kinds[prof.layerKind[i] ?? 0];
      if (kind === undefined) continue;
      dense += kind.denseParams;
      expert += kind.expertParams;
      act += perLayerAct[i] ?? 0;
      working = Math.max(working, fullAct[i] ?? 0);
    }
    if (st.isFirst) dense += prof.embeddingParams;
    if (st.isLast) dense += prof.finalNormParams + (prof.tied && c.pp === 1 ? 0 : prof.headParams);
    const denseGpu = dense / t;
    const expertGpu = expert / (t * c.ep);
    maxDenseParams = Math.max(maxDenseParams, denseGpu);
    maxExpertParams = Math.max(maxExpertParams, expertGpu);
    const shardOf = (stage: number, d: number, e: number): number =>
      c.zero >= stage ? d / dpShard + e / expertShard : d + e;
    const weightParams = shardOf(3, denseGpu, expertGpu);
    const gradParams = shardOf(2, denseGpu, expertGpu);
    const optParams = shardOf(1, denseGpu, expertGpu);
    const weights = c.offload === 'all' ? 0 : weightParams * r.weightBytes;
    // Full offload (ZeRO-Infinity style) streams each layer's gradient shard to the host too.
    const grads = c.offload === 'all' ? 0 : gradParams * r.gradientBytes;
    const optimizerBytes = optParams * (r.masterWeightBytes + r.optimizerStateBytes);
    const optimizerOnGpu = c.offload === 'none' ? optimizerBytes : 0;
    const hostBytes =
      (c.offload === 'none' ? 0 : optimizerBytes) +
      (c.offload === 'all' ? weightParams * r.weightBytes + gradParams * r.gradientBytes : 0);
    maxHostBytes = Math.max(maxHostBytes, hostBytes);
    checkpointBytes = Math.max(checkpointBytes, weightParams * r.weightBytes + optimizerBytes);

    const chunks =
      c.vpp > 1
        ? Math.min(m * c.vpp, (c.pp - k - 1) * 2 + (c.vpp - 1) * c.pp + 1)
        : Math.min(m, c.pp - k);
    const activations =
      (act / c.vpp) * chunks + (c.recompute === 'full' ? working : 0) + (st.isLast ? logits : 0);
    let buffers = 0;
    if (t > 1) buffers += 2 * tokens * h * 2;
    if (c.pp > 1) buffers += (4 * tokens * h * 2) / (sw.scatterGatherP2p ? t : 1);
    if (c.zero === 3 || c.offload === 'all') buffers += 2 * largestLayerParams * r.weightBytes;
    const sum = weights + grads + optimizerOnGpu + activations + buffers + runtimeBytes;
    const memory = {
      weights,
      gradients: grads,
      optimizer: optimizerOnGpu,
      activations,
      buffers,
      runtime: runtimeBytes,
      reserve: sum * fragmentationShare,
    };
    const total = sum * (1 + fragmentationShare);
    const over = total - st.device.capacityBytes;
    const worstOver =
      worst === null ? -Infinity : worst.total - (stages[worst.k]?.device.capacityBytes ?? 0);
    if (worst === null || over > worstOver) worst = { total, memory, k };
  }
  if (worst === null) throw new Error('no stages');
  const worstDevice = stages[worst.k]?.device as StageDevice;
  // Offloaded state must fit in the host first: a plan that fails there is not rescued by GPU memory.
  if (maxHostBytes > worstDevice.hostBytesPerGpu * hostMemoryShare)
    return {
      kind: 'rejected',
      why: {
        kind: 'host-memory',
        term: 'offload',
        message: `offloaded state needs ${(maxHostBytes / gib).toFixed(1)} GiB of host memory per GPU, over ${(hostMemoryShare * 100).toFixed(0)}% of the ${(worstDevice.hostBytesPerGpu / gib).toFixed(0)} GiB each GPU's share of the host has`,
      },
    };

  if (worst.total > worstDevice.capacityBytes) {
    const terms = Object.entries(worst.memory).sort((a, b) => b[1] - a[1]);
    const [term, bytes] = terms[0] ?? ['weights', 0];
    return {
      kind: 'rejected',
      why: {
        kind: 'memory',
        term,
        peakBytes: worst.total,
        capacityBytes: worstDevice.capacityBytes,
        memory: worst.memory,
        message: `needs ${(worst.total / gib).toFixed(1)} GiB on stage ${worst.k} of ${(worstDevice.capacityBytes / gib).toFixed(0)} GiB (largest term: ${term} ${(bytes / gib).toFixed(1)} GiB)`,
      },
    };
  }
  // ---- time ----
  const comm = ctx.comm;
  const actBytes = tokens * h * 2;
  let bottleneck = {
    compute: 0,
    tp: 0,
    ep: 0,
    cp: 0,
    forward: 0,
    backward: 0,
    total: 0,
  };
  let totalAll = 0;
  for (const st of stages) {
    const first = st.device.firstDevice;
    const costs = kindCosts(st.device);
    const tpOne = comm.collective('all-reduce', actBytes, first, 1, t);
    let compute = 0;
    let forward = 0;
    let backward = 0;
    let tpTime = 0;
    let epTime = 0;
    let cpTime = 0;
    for (const i of st.layers) {
      const kindIndex = prof.layerKind[i] ?? 0;
      const lc = costs[kindIndex];
      const kind = prof.kinds[kindIndex];
      if (lc === undefined || kind === undefined) continue;
      compute += lc.forward + lc.backward;
      forward += lc.forward;
      backward += lc.backward;
      tpTime += lc.tpCollectives * tpOne;
      if (lc.allToAlls > 0) {
        const bytes = (tokens * kind.expertsPerToken * h * 2) / (c.sp ? t : 1);
        epTime += lc.allToAlls * comm.collective('all-to-all', bytes, first, t * c.cp, c.ep);
      }
      if (c.cp > 1) {
        const kv = (c.cp * tokens * kind.kvWidth * 2) / Math.min(t, kind.kvHeads);
        const gather = comm.collective('all-gather', kv, first, t, c.cp);
        const passes = c.recompute === 'full' ? 2 : 1;
        cpTime +=
          passes * Math.max(0, gather - lc.attentionForward) +
          Math.max(0, 2 * gather - lc.attentionBackward);
      }
    }
    if (st.isFirst) {
      const e = embedSeconds(st.device);
      compute += e;
      forward += e / 3;
      if (t > 1) tpTime += tpOne;
    }
    if (st.isLast) {
      const hs = headSeconds(st.device);
      compute += hs;
      backward += hs;
      if (t > 1) tpTime += tpOne;
    }
    const total = compute + tpTime + epTime + cpTime;
    totalAll += total;
    if (total > bottleneck.total)
      bottleneck = { compute, tp: tpTime, ep: epTime, cp: cpTime, forward, backward, total };
  }
  const meanStage = totalAll / stages.length;
  const bubble = ((c.pp - 1) / c.vpp) * meanStage;
  let pp = 0;
  if (c.pp > 1) {
    const a = stages[0]?.device.firstDevice ?? 0;
    const b = stages[1]?.device.firstDevice ?? 0;
    const one = comm.sendSeconds(a, b, actBytes / (sw.scatterGatherP2p ? t : 1));
    pp = 2 * (m * c.vpp + c.pp - 1) * one;
  }

  // Data parallelism over dp x cp ranks (stride t); experts over their own replicas.
  const first = 0;
  const dpGroup = dpShard;
  const gb = r.gradientBytes;
  // Parameters are gathered in bf16 whatever the recipe keeps (fp8 copies are made locally).
  const wb = 2;
  // Expert replicas: the dp ranks holding the same experts (every ep-th), stride t x cp x ep.
  const expertGroup = Math.max(1, c.dp / c.ep);
  const expertStride = t * c.cp * c.ep;
  const rs = (params: number, stride: number, size: number, bytesPer: number): number =>
    comm.collective('reduce-scatter', params * bytesPer, first, stride, size);
  const ag = (params: number, stride: number, size: number): number =>
    comm.collective('all-gather', params * wb, first, stride, size);
  const ar = (params: number, stride: number, size: number): number =>
    comm.collective('all-reduce', params * gb, first, stride, size);
  const both = (fn: (p: number, st: number, sz: number) => number): number =>
    fn(maxDenseParams, t, dpGroup) +
    (maxExpertParams > 0 ? fn(maxExpertParams, expertStride, expertGroup) : 0);
  let dp: number;
  const mbCompute = bottleneck.compute;
  if (c.zero <= 1) {
    const grad = c.zero === 0 ? both(ar) : both((p, st, sz) => rs(p, st, sz, gb));
    const gather = c.zero === 1 ? both(ag) : 0;
    if (sw.overlapDataParallel) {
      // Buckets reduce while the last micro-batch's backward runs; the parameter all-gather
      // overlaps the next step's first forward. The last bucket (~1/8) never overlaps.
      const lastForward = bottleneck.forward;
      dp =
        Math.max(grad / 8, grad - bottleneck.backward) + Math.max(gather / 8, gather - lastForward);
    } else dp = grad + gather;
  } else {
    const perMicro = both((p, st, sz) => rs(p, st, sz, gb)) + (c.zero === 3 ? 2 * both(ag) : 0);
    const once = c.zero === 2 ? both(ag) : 0;
    dp = sw.overlapDataParallel
      ? m * Math.max(perMicro / 8, perMicro - mbCompute) + once
      : m * perMicro + once;
  }

  // The optimizer step: a memory-bound fused Adam over this rank's shard, or the host's.
  const shardParams =
    c.zero >= 1
      ? maxDenseParams / dpGroup + maxExpertParams / expertShard
      : maxDenseParams + maxExpertParams;
  const dev = stages[0]?.device as StageDevice;
  let optimizer = 0;
  let offload = 0;
  const computeTotal = m * bottleneck.compute;
  if (c.offload === 'none') {
    optimizer = memoryBoundSeconds(dev.speed, shardParams * (24 + gb + r.weightBytes), 4);
  } else {
    // Asynchronous offload: gradients go down, the CPU updates, new weights come up, all
    // overlapped with the next step's compute (a one-step-delayed update); only the excess shows.
    const link = dev.hostLinkBytesPerS * 0.8;
    const traffic = (shardParams * (gb + r.weightBytes)) / link + shardParams / cpuAdamParamsPerS;
    offload = Math.max(0, traffic - computeTotal);
    if (c.offload === 'all') {
      const perMicro =
        (2 * (maxDenseParams / dpGroup + maxExpertParams / expertShard) * r.weightBytes) / link;
      offload += m * Math.max(0, perMicro - mbCompute);
    }
  }

  const time = {
    compute: computeTotal,
    tp: m * bottleneck.tp,
    cp: m * bottleneck.cp,
    ep: m * bottleneck.ep,
    pp,
    bubble,
    dp,
    optimizer,
    offload,
  };
  const stepTimeS = Object.values(time).reduce((a, b) => a + b, 0);
  const tokensPerStep = ctx.globalBatch * s;
  const tokensPerS = tokensPerStep / stepTimeS;
  const modelFlops = prof.modelFlopsPerToken * tokensPerStep;
  const tflopsPerGpu = modelFlops / stepTimeS / ctx.gpus / 1e12;
  return {
    kind: 'plan',
    plan: {
      tp: c.tp,
      pp: c.pp,
      vpp: c.vpp,
      dp: c.dp,
      cp: c.cp,
      ep: c.ep,
      sp: c.sp,
      zero: c.zero,
      microBatch: c.microBatch,
      gradAccum: m,
      recompute: c.recompute,
      offload: c.offload,
      memoryGiB: worst.total / gib,
      stepTimeS,
      tokensPerS,
      tflopsPerGpu,
      mfu: modelFlops / stepTimeS / ctx.bf16PeakFlops,
      scalingEfficiency: Number.NaN,
      memory: worst.memory,
      time,
      checkpointBytesPerGpu: checkpointBytes,
      stages: stages.map((st) => ({
        accelerator: st.device.speed.accelerator.id,
        layers: st.layers.length,
      })),
    },
  };
}
