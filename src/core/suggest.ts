import { distance } from 'fastest-levenshtein';
import { CubeError, type ErrorWhere } from './cube-error.ts';

/**
 * The candidates closest to `input`: those containing it or contained in it first, then by
 * edit distance, keeping only plausible matches (distance at most about a third of the length).
 */
export function nearestNames(
  input: string,
  candidates: readonly string[],
  options: { max?: number } = {},
): string[] {
  const max = options.max ?? 3;
  const needle = input.toLowerCase();
  const scored = candidates.map((name) => {
    const hay = name.toLowerCase();
    const contains = needle.length >= 2 && (hay.includes(needle) || needle.includes(hay));
    return { name, contains, d: distance(needle, hay) };
  });
  const limit = Math.max(2, Math.ceil(needle.length / 3));
  return scored
    .filter((s) => s.contains || s.d <= limit)
    .sort(
      (a, b) => Number(b.contains) - Number(a.contains) || a.d - b.d || (a.name < b.name ? -1 : 1),
    )
    .slice(0, max)
    .map((s) => s.name);
}

/** An UNKNOWN_ID error that names what was looked for and suggests the nearest known ids. */
export function unknownIdError(
  kind: string,
  id: string,
  known: readonly string[],
  where: ErrorWhere = {},
): CubeError {
  const near = nearestNames(id, known);
  const hint =
    near.length > 0
      ? `did you mean ${near.map((n) => `"${n}"`).join(', ')}?`
      : known.length === 0
        ? `there is no ${kind} yet`
        : `known ${kind} ids: ${known.slice(0, 12).join(', ')}${known.length > 12 ? ', ...' : ''}`;
  return new CubeError('UNKNOWN_ID', `unknown ${kind} "${id}"`, {
    where: { ...where, allowed: known },
    hint,
  });
}
