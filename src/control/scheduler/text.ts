/** Ordering and wording shared by the scheduler's explanations and reasons. */

const collator = new Intl.Collator('en', { numeric: true });

/** Natural order of names (`node-2` before `node-10`), then plain code-unit order. */
export function compareNames(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** `1 node`, `3 nodes`. */
export function count(n: number, noun: string, pluralNoun = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : pluralNoun}`;
}

/** `node-1, node-2 and 3 more`: at most `shown` names. */
export function listNames(names: readonly string[], shown = 3): string {
  if (names.length <= shown) return names.join(', ');
  return `${names.slice(0, shown).join(', ')} and ${names.length - shown} more`;
}

/**
 * Names with what they share: `node-3 cordoned`, `node-3 and node-4 cordoned`, or for many,
 * `5 nodes cordoned (node-1, node-2, node-3 and 2 more)`.
 */
export function namesThat(names: readonly string[], what: string): string {
  if (names.length <= 3) {
    const last = names[names.length - 1] ?? '';
    const head = names.slice(0, -1).join(', ');
    return `${head === '' ? last : `${head} and ${last}`} ${what}`;
  }
  return `${names.length} nodes ${what} (${listNames(names)})`;
}

/** `ranks 0-7`, `rank 3`, `ranks 0, 2, 4`. */
export function rankRange(ranks: readonly number[]): string {
  if (ranks.length === 1) return `rank ${ranks[0]}`;
  const first = ranks[0] ?? 0;
  const contiguous = ranks.every((r, i) => r === first + i);
  return contiguous
    ? `ranks ${first}-${first + ranks.length - 1}`
    : `ranks ${listNames(ranks.map(String), 8)}`;
}
