import { randomBytes } from 'node:crypto';
import { z } from 'zod';

// RFC 4648 base32 in lower case: readable, case-insensitive, no ambiguous 0/1/8/9.
const base32Alphabet = 'abcdefghijklmnopqrstuvwxyz234567';

/** `prefix` + `-` + `length` random base32 characters, e.g. `j-k3v9q2xa`. */
export function randomId(prefix: string, length = 8): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += base32Alphabet[byte & 31];
  return `${prefix}-${out}`;
}

/** A job id: `j-` and 8 base32 characters. */
export const JobIdSchema = z
  .string()
  .regex(/^j-[a-z2-7]{8}$/, 'must be j- and 8 base32 characters');

/** A node id: `n-` and 8 base32 characters. */
export const NodeIdSchema = z
  .string()
  .regex(/^n-[a-z2-7]{8}$/, 'must be n- and 8 base32 characters');

/** A new job id. */
export function newJobId(): string {
  return randomId('j');
}

/** A new node id. */
export function newNodeId(): string {
  return randomId('n');
}
