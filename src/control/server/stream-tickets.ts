import { randomBytes } from 'node:crypto';
import type { ApiTokenInfo } from '../store/index.ts';

/** How long a stream ticket stays good. */
export const streamTicketSeconds = 30;

// Outstanding tickets at most: issuing more drops the oldest (each is good for 30 s anyway).
const maxTickets = 10_000;

/**
 * Short-lived, single-use tickets for the live event stream. A browser's EventSource cannot
 * send an `Authorization` header, and a long-lived token must never appear in a URL (it ends up
 * in proxy logs and browser history), so the dashboard trades its token for a ticket
 * (`POST /api/v1/stream-tickets`) and opens `GET /api/v1/stream?ticket=...` with it. A ticket
 * works once, within {@link streamTicketSeconds}, with its holder's role and job scope. Kept in
 * memory: a restart voids every ticket, which costs a reconnecting client one more POST.
 */
export class StreamTickets {
  readonly #tickets = new Map<string, { readonly tokenId: string; readonly expiresAtMs: number }>();
  readonly #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** A new ticket for `token`. */
  issue(token: ApiTokenInfo): { ticket: string; expiresInS: number } {
    this.#sweep();
    while (this.#tickets.size >= maxTickets) {
      const oldest = this.#tickets.keys().next().value;
      if (oldest === undefined) break;
      this.#tickets.delete(oldest);
    }
    const ticket = randomBytes(24).toString('base64url');
    this.#tickets.set(ticket, {
      tokenId: token.id,
      expiresAtMs: this.#now() + streamTicketSeconds * 1000,
    });
    return { ticket, expiresInS: streamTicketSeconds };
  }

  /** The id of the token the ticket was issued to, once; null when unknown, used or expired. */
  redeem(ticket: string): { id: string } | null {
    const held = this.#tickets.get(ticket);
    if (held === undefined) return null;
    this.#tickets.delete(ticket);
    return held.expiresAtMs > this.#now() ? { id: held.tokenId } : null;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [ticket, held] of this.#tickets)
      if (held.expiresAtMs <= now) this.#tickets.delete(ticket);
  }
}
