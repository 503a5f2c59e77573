import type { PlanContext } from './context.ts';
import { evaluateCandidate, type Candidate, type Rejection } from './evaluate.ts';
import type { Offload, Plan, PlanPins, Recompute } from './types.ts';

/**
 * The parallelism search. Enumeration walks divisors only (tp inside a server and dividing the
 * heads, pp up to the layer count, cp and ep dividing what they split), and for each layout and
 * micro-batch walks the memory savers from cheapest to dearest — ZeRO-1, ZeRO-2, ZeRO-3, then
 * optimizer offload, then full offload — stopping at the first that fits: each later saver costs
 * more time for the same layout, so it can only lose. Memory is checked before any collective is
 * priced, and a micro-batch that fits nowhere ends the walk over larger ones.
 */

/** The best plan and the first rejection of one tp/pp/zero family, for `--explain`. */
export interface FamilyOutcome {
  readonly key: string;
  readonly tp: number;
  readonly pp: number;
  readonly zero: number;
  best: Plan | null;
  rejection: Rejection | null;
}

export interface SearchOutcome {
  readonly plans: Plan[];
  readonly families: Map<string, FamilyOutcome>;
  /** The memory rejection that came closest to fitting (smallest peak over capacity). */
  readonly closest: { readonly candidate: Candidate; readonly why: Rejection } | null;
  /** Reasons layouts were skipped before evaluation (divisibility), by message. */
  readonly constraints: Set<string>;
  evaluated: number;
  enumerated: number;
  /** Candidates cut by the bound before their communication was priced. */
  pruned: number;
}

/** Positive divisors of n, ascending. */
export function divisors(n: number): number[] {
  const small: number[] = [];
  const large: number[] = [];
  for (let d = 1; d * d <= n; d += 1) {
    if (n % d === 0) {
      small.push(d);
      if (d * d !== n) large.unshift(n / d);
    }
  }
  return [...small, ...large];
}

/** Server size the tensor-parallel search stays inside (the smallest server of the cluster). */
function serverSize(ctx: PlanContext): number {
  return Math.min(...ctx.cluster.runs.map((r) => r.devicesPerServer));
}

/** Whether tensor parallelism of degree t can split this model's attention. */
export function tpFitsHeads(ctx: PlanContext, t: number): boolean {
  return ctx.profile.kinds.every(
    (k) => k.heads % t === 0 && (k.kvHeads % t === 0 || t % k.kvHeads === 0),
  );
}

/** How many dimensions a plan uses beyond plain data parallelism (ties go to the simpler plan). */
function complexity(p: Plan): number {
  return (
    (p.tp > 1 ? 1 : 0) +
    (p.pp > 1 ? 1 : 0) +
    (p.vpp > 1 ? 1 : 0) +
    (p.cp > 1 ? 1 : 0) +
    (p.ep > 1 ? 1 : 0) +
    p.zero / 4 +
    (p.offload === 'none' ? 0 : 1) +
    (p.recompute === 'none' ? 0 : 0.5)
  );
}

/** Highest tokens/s first; within 0.1% the simpler plan first. */
export function byThroughputThenSimplicity(a: Plan, b: Plan): number {
  const close =
    Math.abs(a.tokensPerS - b.tokensPerS) <= 1e-3 * Math.max(a.tokensPerS, b.tokensPerS);
  return close ? complexity(a) - complexity(b) : b.tokensPerS - a.tokensPerS;
}

/**
 * Runs the search. With `keep`, only the best `keep` plans matter: a candidate whose compute
 * alone is slower than the keep-th best step time so far is not priced (branch and bound);
 * without it every candidate is priced (what `--explain` needs for its families).
 */
export function search(
  ctx: PlanContext,
  pins: PlanPins,
  options: { readonly keep?: number } = {},
): SearchOutcome {
  const keep = options.keep;
  // The best step times so far, ascending, at most `keep` of them.
  const bestTimes: number[] = [];
  const boundS = (): number | undefined =>
    keep !== undefined && bestTimes.length >= keep ? bestTimes[keep - 1] : undefined;
  const remember = (stepTimeS: number): void => {
    if (keep === undefined) return;
    let i = bestTimes.length;
    while (i > 0 && (bestTimes[i - 1] ?? 0) > stepTimeS) i -= 1;
    bestTimes.splice(i, 0, stepTimeS);
    if (bestTimes.length > keep) bestTimes.pop();
  };
  const N = ctx.gpus;
  const L = ctx.profile.layers;
  const B = ctx.globalBatch;
  const s = ctx.seqLen;
  const out: SearchOutcome = {
    plans: [],
    families: new Map(),
    closest: null,
    constraints: new Set(),
    evaluated: 0,
    enumerated: 0,
    pruned: 0,
  };
  let closestRatio = Infinity;
  const per = serverSize(ctx);
  const tps =
    pins.tp !== undefined ? [pins.tp] : divisors(N).filter((t) => t <= per && tpFitsHeads(ctx, t));
  const recomputes: Recompute[] =
    pins.recompute !== undefined
      ? [pins.recompute]
      : ctx.software.flashAttention
        ? ['none', 'full']
        : ['none', 'selective', 'full'];

  for (const t of tps) {
    const pps = pins.pp !== undefined ? [pins.pp] : divisors(N / t).filter((p) => p <= L);
    for (const p of pps) {
      if ((N / t) % p !== 0) continue;
      const cps =
        pins.cp !== undefined
          ? [pins.cp]
          : divisors(N / (t * p)).filter(
              (c) =>
                c === 1 ||
                (ctx.software.flashAttention && c <= 32 && s % (2 * c) === 0 && s / c >= 4096),
            );
      for (const c of cps) {
        if ((N / (t * p)) % c !== 0) continue;
        const dp = N / (t * p * c);
        if (B % dp !== 0) {
          out.constraints.add(`global batch ${B} is not a multiple of dp ${dp}`);
          continue;
        }
        const eps = !ctx.profile.isMoe
          ? [1]
          : pins.ep !== undefined
            ? [pins.ep]
            : divisors(dp).filter((e) => ctx.profile.experts % e === 0);
        // Interleaving splits each stage into vpp chunks; chunks differ by at most one layer and
        // the first and last may be empty (Llama 3 drops a layer from the first and last stage).
        const vpps =
          pins.vpp !== undefined
            ? [pins.vpp]
            : p === 1
              ? [1]
              : [1, 2, 4, 8].filter((v) => p * v <= L + 2);
        const perRank = B / dp;
        const mbs =
          pins.microBatch !== undefined
            ? [pins.microBatch]
            : divisors(perRank).filter((b) => b <= 16);
        const zeros: (0 | 1 | 2 | 3)[] =
          pins.zero !== undefined ? [pins.zero] : dp * c > 1 ? [1, 2, 3] : [0];
        const offloads: Offload[] =
          pins.offload !== undefined ? [pins.offload] : ['none', 'optimizer', 'all'];
        const ladder: { zero: 0 | 1 | 2 | 3; offload: Offload }[] = [];
        for (const offload of offloads)
          for (const zero of zeros) {
            if (offload === 'all' && zero !== 3 && pins.zero === undefined) continue;
            if (offload === 'all' && zero !== 3) continue;
            ladder.push({ zero, offload });
          }
        const sp = pins.sp ?? t > 1;
        for (const e of eps) {
          for (const v of vpps) {
            for (const b of mbs) {
              if (perRank % b !== 0) continue;
              const m = perRank / b;
              if (v > 1 && m % p !== 0) {
                out.constraints.add(
                  `the interleaved schedule needs the ${m} micro-batches to be a multiple of pp ${p}`,
                );
                continue;
              }
              let anyFit = false;
              let anyPruned = false;
              // Recompute levels are tried cheapest first; a dearer level can only win by fitting
              // at an earlier (cheaper) memory saver than the cheaper level needed.
              let ladderLimit = ladder.length;
              for (const recompute of recomputes) {
                for (let si = 0; si < ladderLimit; si += 1) {
                  const step = ladder[si] as (typeof ladder)[number];
                  out.enumerated += 1;
                  const cand: Candidate = {
                    tp: t,
                    pp: p,
                    vpp: v,
                    cp: c,
                    ep: e,
                    dp,
                    sp,
                    zero: step.zero,
                    microBatch: b,
                    recompute,
                    offload: step.offload,
                  };
                  out.evaluated += 1;
                  const bound = boundS();
                  const r = evaluateCandidate(
                    ctx,
                    cand,
                    bound === undefined ? {} : { boundS: bound },
                  );
                  if (r.kind === 'pruned') {
                    // Later memory savers cost at least as much compute: none can win either.
                    anyPruned = true;
                    out.pruned += 1;
                    break;
                  }
                  const key = `tp${t} pp${p} zero${step.zero}`;
                  let fam = out.families.get(key);
                  if (fam === undefined) {
                    fam = { key, tp: t, pp: p, zero: step.zero, best: null, rejection: null };
                    out.families.set(key, fam);
                  }
                  if (r.kind === 'plan') {
                    out.plans.push(r.plan);
                    remember(r.plan.stepTimeS);
                    if (pins.zero === undefined && pins.offload === undefined) ladderLimit = si;
                    anyFit = true;
                    if (fam.best === null || r.plan.tokensPerS > fam.best.tokensPerS)
                      fam.best = r.plan;
                    break;
                  }
                  // Keep the rejection that came closest to fitting: it names the binding term.
                  if (
                    fam.rejection === null ||
                    (r.why.peakBytes ?? Infinity) < (fam.rejection.peakBytes ?? Infinity)
                  )
                    fam.rejection = r.why;
                  if (r.why.peakBytes !== undefined && r.why.capacityBytes !== undefined) {
                    const ratio = r.why.peakBytes / r.why.capacityBytes;
                    if (ratio < closestRatio) {
                      closestRatio = ratio;
                      (out as { closest: SearchOutcome['closest'] }).closest = {
                        candidate: cand,
                        why: r.why,
                      };
                    }
                  }
                }
              }
              // A micro-batch that fits nowhere: larger ones only need more memory.
              if (!anyFit && !anyPruned && pins.microBatch === undefined) break;
            }
          }
        }
      }
    }
  }
  out.plans.sort(byThroughputThenSimplicity);
  return out;
}
