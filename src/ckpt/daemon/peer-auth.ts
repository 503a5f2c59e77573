import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { jobIdSchema } from '../schemas.ts';

/**
 * Authentication of daemon-to-daemon connections (docs/checkpoint-format.md, "Daemon-to-daemon
 * replication", "Authentication"). The control plane holds a master key; for each job attempt
 * it derives one key per ordered pair of the job's nodes and hands each node, with its launch
 * command, the keys it dials with (`outgoing`) and the keys it accepts with what each caller
 * may do (`incoming`). A node thus learns nothing that opens another job, another attempt, or
 * another pair of nodes.
 */

const keySchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{43}$/, 'a key is 32 bytes in base64url (43 characters)');
const nodeName = z.string().min(1).max(253).regex(/^\S+$/, 'a node name has no whitespace');

/** What one node may do on this node's peer port in one job attempt. */
export const peerGrantSchema = z.object({
  node: nodeName,
  key: keySchema,
  /** Ranks whose replicas `node` may write here (its ranks, when this node is its replica peer). */
  writeRanks: z.array(z.int().min(0)),
  /** Ranks whose shards `node` may read here (the ranks placed on it in this attempt). */
  readRanks: z.array(z.int().min(0)),
});
export type PeerGrant = z.infer<typeof peerGrantSchema>;

/** A node's credentials for one job attempt, from its launch command. */
export const peerAccessSchema = z.object({
  attempt: z.int().min(0),
  /** The key this node proves itself with when it connects to `node`. */
  outgoing: z.array(z.object({ node: nodeName, key: keySchema })),
  incoming: z.array(peerGrantSchema),
});
export type PeerAccess = z.infer<typeof peerAccessSchema>;

/** `cube ckpt daemon --peer-access FILE`: access per job, for a daemon run without an agent. */
export const peerAccessFileSchema = z.record(jobIdSchema, peerAccessSchema);

/** Size of a handshake nonce, bytes. */
export const nonceBytes = 32;

function hmac(key: Buffer | string, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

/** The key of connections from `from` to `to` in `job`'s attempt `attempt` (base64url). */
export function pairKey(
  master: Buffer,
  where: { job: string; attempt: number; from: string; to: string },
): string {
  const attemptKey = hmac(master, `cube-peer/1\n${where.job}\n${where.attempt}`);
  return hmac(attemptKey, `${where.from}\n${where.to}`).toString('base64url');
}

/** A fresh master key (32 random bytes). */
export function newMasterKey(): Buffer {
  return randomBytes(32);
}

/** A fresh handshake nonce, base64url. */
export function newNonce(): string {
  return randomBytes(nonceBytes).toString('base64url');
}

/** The transcript both handshake MACs cover: every value either side chose or named. */
interface Transcript {
  readonly serverNonce: string;
  readonly clientNonce: string;
  readonly job: string;
  readonly attempt: number;
  readonly from: string;
  readonly to: string;
}

function transcriptText(label: string, t: Transcript): string {
  // Newline-separated: no value may contain a newline (nonces are base64url, job ids and node
  // names are checked), so two transcripts never read the same.
  return [label, t.serverNonce, t.clientNonce, t.job, String(t.attempt), t.from, t.to].join('\n');
}

/** The client's proof (`hello`). */
export function helloMac(key: string, t: Transcript): string {
  return hmac(Buffer.from(key, 'base64url'), transcriptText('cube-peer/1 hello', t)).toString(
    'base64url',
  );
}

/** The server's proof (`welcome`): the client learns it reached the node it meant. */
export function welcomeMac(key: string, t: Transcript): string {
  return hmac(Buffer.from(key, 'base64url'), transcriptText('cube-peer/1 welcome', t)).toString(
    'base64url',
  );
}

/** Compares two base64url MACs in constant time (for equal lengths). */
export function macEquals(a: string, b: string): boolean {
  const x = Buffer.from(a, 'base64url');
  const y = Buffer.from(b, 'base64url');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** One node of a job attempt as the control plane placed it. */
export interface PlacedNode {
  readonly node: string;
  readonly ranks: readonly number[];
  /** The node this one pushes its replicas to, if any. */
  readonly replicaPeer: string | null;
}

/**
 * The access of `self` in a job attempt: an outgoing key to every other node of the job, and
 * for every other node an incoming key with the replicas it may write here (its ranks, when
 * `self` is its replica peer) and read here (its ranks in this attempt).
 */
export function peerAccessFor(
  master: Buffer,
  placement: { job: string; attempt: number; nodes: readonly PlacedNode[] },
  self: string,
): PeerAccess {
  const { job, attempt } = placement;
  const others = placement.nodes.filter((n) => n.node !== self);
  return {
    attempt,
    outgoing: others.map((n) => ({
      node: n.node,
      key: pairKey(master, { job, attempt, from: self, to: n.node }),
    })),
    incoming: others.map((n) => ({
      node: n.node,
      key: pairKey(master, { job, attempt, from: n.node, to: self }),
      writeRanks: n.replicaPeer === self ? [...n.ranks] : [],
      readRanks: [...n.ranks],
    })),
  };
}
