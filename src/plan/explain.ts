import { resolveRequest, resultOf } from './plan-job.ts';
import { search } from './search.ts';
import type { Plan, PlanRequest, PlanResult } from './types.ts';

/** The best plan of one tp/pp/zero family and why it lost to the overall best. */
export interface Alternative {
  readonly family: string;
  readonly plan: Plan | null;
  /** Step time relative to the best plan (1.2 = 20% slower); null when nothing fits. */
  readonly relativeStepTime: number | null;
  readonly reason: string;
}

export interface Explanation {
  readonly result: PlanResult;
  readonly alternatives: readonly Alternative[];
  /** Candidates the search priced, and those it enumerated (pruned ones included). */
  readonly evaluated: number;
}

const termWords: Readonly<Record<string, string>> = {
  compute:
    'more compute on the slowest stage (recomputation, stage imbalance or smaller, less efficient GEMMs)',
  tp: 'more exposed tensor-parallel communication',
  cp: 'more exposed context-parallel communication',
  ep: 'more exposed expert all-to-all',
  pp: 'more pipeline point-to-point traffic',
  bubble: 'a bigger pipeline bubble',
  dp: 'more exposed data-parallel communication',
  optimizer: 'a slower optimizer step',
  offload: 'offload traffic that compute does not hide',
};

/** Why the main alternatives lost: the best plan per tp/pp/zero family with its binding reason. */
export function explainPlans(request: PlanRequest): Explanation {
  const resolved = resolveRequest(request);
  const outcome = search(resolved.ctx, resolved.pins);
  const result = resultOf(request, resolved, outcome, resolved.top);
  const best = outcome.plans[0];
  const alternatives: Alternative[] = [];
  // The lowest ZeRO stage that fits each tp/pp layout: higher stages are only tried when it
  // does not, since they add communication without saving time.
  const fitting = new Map<string, number>();
  for (const fam of outcome.families.values())
    if (fam.best !== null) {
      const layout = `tp${fam.tp} pp${fam.pp}`;
      fitting.set(layout, Math.min(fitting.get(layout) ?? Infinity, fam.zero));
    }
  for (const fam of outcome.families.values()) {
    if (fam.best === null) {
      const sibling = fitting.get(`tp${fam.tp} pp${fam.pp}`);
      alternatives.push({
        family: fam.key,
        plan: null,
        relativeStepTime: null,
        reason:
          sibling !== undefined && sibling < fam.zero
            ? `not needed: ZeRO-${sibling} already fits this layout, and a higher stage only adds communication`
            : `does not fit: ${fam.rejection?.message ?? 'no candidate'}`,
      });
      continue;
    }
    if (best === undefined) continue;
    const p = fam.best;
    if (p === best) {
      alternatives.push({ family: fam.key, plan: p, relativeStepTime: 1, reason: 'the best plan' });
      continue;
    }
    let worstTerm = 'compute';
    let worstDelta = -Infinity;
    for (const [term, seconds] of Object.entries(p.time)) {
      const delta = seconds - (best.time[term] ?? 0);
      if (delta > worstDelta) {
        worstDelta = delta;
        worstTerm = term;
      }
    }
    alternatives.push({
      family: fam.key,
      plan: p,
      relativeStepTime: p.stepTimeS / best.stepTimeS,
      reason: `${termWords[worstTerm] ?? worstTerm}: +${(worstDelta * 1e3).toFixed(1)} ms ${worstTerm} per step`,
    });
  }
  alternatives.sort((a, b) => (a.relativeStepTime ?? Infinity) - (b.relativeStepTime ?? Infinity));
  return { result, alternatives, evaluated: outcome.evaluated };
}
