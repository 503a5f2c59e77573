import { modelOverlay } from './catalog.ts';
import { outsideBand, unconfirmedButShapesKnown } from './data/reported.ts';
import type { ModelArchitecture } from './model.ts';
import { parameterBreakdown } from './params.ts';

/**
 * How a computed count relates to the authors' figure. The tolerance rule:
 * - `rounded`: the computed count, in billions, rounded to the reported figure's decimals, IS the
 *   reported figure (1.23 for 1,235,814,400; 46.7 for 46,702,792,704);
 * - `nominal`: otherwise within +-5% of it: names such as "7B" or "70B" are nominal sizes picked
 *   near the true count (Llama-2-70B is 68.98B, Llama-3.1-405B is 405.85B);
 * - `explained`: outside the band, with the reason listed in data/reported.ts;
 * - `unexplained`: outside the band with no reason (a data error; the tests forbid it);
 * - `unreported`: no figure to compare with.
 */
export type Agreement = 'rounded' | 'nominal' | 'explained' | 'unexplained' | 'unreported';

/** The half-width of the nominal band, as a fraction of the reported figure. */
export const nominalBand = 0.05;

export interface FigureComparison {
  readonly reportedBillions: number | null;
  readonly computed: number;
  readonly agreement: Agreement;
  /** Why an `explained` figure differs. */
  readonly reason: string | null;
}

export interface ReportedComparison {
  readonly total: FigureComparison;
  /** null for dense models. */
  readonly active: FigureComparison | null;
  /**
   * True when the count is confirmed exact: every shape is from a confirmed config (nothing in
   * `unconfirmed` touches a weight shape) and each reported figure agrees by rounding or within
   * the nominal band, at least one of them being reported.
   */
  readonly exact: boolean;
}

function decimals(x: number): number {
  const s = String(x);
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

/** Applies the tolerance rule to one figure; `reason` is the listed explanation, if any. */
export function compareFigure(
  computed: number,
  reportedBillions: number | null,
  reason: string | undefined,
): FigureComparison {
  const base = { reportedBillions, computed, reason: reason ?? null };
  if (reportedBillions === null) return { ...base, agreement: 'unreported' };
  const billions = computed / 1e9;
  const d = decimals(reportedBillions);
  if (Number(billions.toFixed(d)) === reportedBillions) return { ...base, agreement: 'rounded' };
  if (Math.abs(billions / reportedBillions - 1) <= nominalBand)
    return { ...base, agreement: 'nominal' };
  return { ...base, agreement: reason === undefined ? 'unexplained' : 'explained' };
}

/**
 * True when nothing the source left unconfirmed could change a weight shape: the `unconfirmed`
 * list is empty (or names only shape-free facts), and the overlay did not have to decide a
 * shape-relevant field the entry left null (tied embeddings, KV heads).
 */
export function shapesConfirmed(model: ModelArchitecture): boolean {
  const overlay = modelOverlay(model.id);
  if (overlay?.tied_embeddings !== undefined || overlay?.num_key_value_heads !== undefined)
    return false;
  return model.unconfirmed.length === 0 || unconfirmedButShapesKnown[model.id] !== undefined;
}

/** Compares a model's computed counts with its reported figures. */
export function compareWithReported(model: ModelArchitecture): ReportedComparison {
  const b = parameterBreakdown(model);
  const reasons = outsideBand[model.id] ?? {};
  const total = compareFigure(b.total, model.reported.totalBillions, reasons.total);
  const isMoe = model.layers.some((l) => l.mlp.kind === 'moe');
  const active = isMoe
    ? compareFigure(b.active, model.reported.activeBillions, reasons.active)
    : null;
  const figures = active === null ? [total] : [total, active];
  const agrees = (f: FigureComparison): boolean =>
    f.agreement === 'rounded' || f.agreement === 'nominal';
  const exact =
    shapesConfirmed(model) &&
    figures.some(agrees) &&
    figures.every((f) => agrees(f) || f.agreement === 'unreported');
  return { total, active, exact };
}
