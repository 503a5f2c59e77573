// Bounding boxes of elements on a page, to assert that marks and labels never overlap.
import type { Locator } from 'playwright-core';

/** An element's box on the page (CSS pixels) and its `data-count`, if any. */
export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly count: number;
  readonly text: string;
}

/** The boxes of every element `locator` matches, in document order. */
export function boxesOf(locator: Locator): Promise<Box[]> {
  // Runs in the page; the tests are compiled without the DOM's types.
  interface PageElement {
    getBoundingClientRect(): { x: number; y: number; width: number; height: number };
    getAttribute(name: string): string | null;
    readonly textContent: string | null;
  }
  return locator.evaluateAll((elements: PageElement[]) =>
    elements.map((e) => {
      const r = e.getBoundingClientRect();
      return {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
        count: Number(e.getAttribute('data-count') ?? 'NaN'),
        text: e.textContent ?? '',
      };
    }),
  );
}

/** The pairs of boxes whose areas intersect (touching edges do not count). */
export function overlapping(boxes: readonly Box[]): [Box, Box][] {
  const pairs: [Box, Box][] = [];
  for (let i = 0; i < boxes.length; i += 1)
    for (let j = i + 1; j < boxes.length; j += 1) {
      const a = boxes[i];
      const b = boxes[j];
      if (a === undefined || b === undefined) continue;
      const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
      const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
      if (w > 0.5 && h > 0.5) pairs.push([a, b]);
    }
  return pairs;
}
