/**
 * Where a catalog number comes from. Every number in the hardware catalog is either
 * published (with the source that publishes it) or estimated (with the reasoning).
 */
export type Provenance =
  | { readonly kind: 'published'; readonly source: string; readonly note?: string }
  | { readonly kind: 'estimated'; readonly reasoning: string; readonly basis?: string };

/** A published number: `source` names a document (title and where it is found). */
export function published(source: string, note?: string): Provenance {
  return note === undefined ? { kind: 'published', source } : { kind: 'published', source, note };
}

/** An estimated number, with why the estimate is what it is. */
export function estimated(reasoning: string, basis?: string): Provenance {
  return basis === undefined
    ? { kind: 'estimated', reasoning }
    : { kind: 'estimated', reasoning, basis };
}
