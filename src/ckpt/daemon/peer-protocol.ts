import { z } from 'zod';
import { jobIdSchema, shardRecordSchema } from '../schemas.ts';
import { pruneRequestSchema } from './prune.ts';

/**
 * The requests one node daemon sends another (docs/checkpoint-format.md, "Daemon-to-daemon
 * replication"). Every request gets exactly one reply frame; `put-shard` and a successful
 * `get-shard` carry the shard bytes as the frame payload; for `offer-shard` the receiver
 * fetches them over a connection it dials (dial-back.ts), then replies.
 */
export const peerRequestSchema = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('put-shard'),
    /** The record as the source wrote it at L1; the replica's record is rewritten for L2. */
    record: shardRecordSchema,
    /** The source node's ranks for this step: the set the replica manifest waits for. */
    setRanks: z.array(z.int().min(0)).min(1),
    bytes: z.int().min(0),
  }),
  z.object({
    op: z.literal('offer-shard'),
    record: shardRecordSchema,
    setRanks: z.array(z.int().min(0)).min(1),
    /** Where the receiver connects to fetch the bytes (on the sender's address). */
    port: z.int().min(1).max(65535),
    /** Presented on that connection, once. */
    ticket: z.string().min(16).max(64),
  }),
  z.object({ op: z.literal('list'), job: jobIdSchema }),
  z.object({
    op: z.literal('get-record'),
    job: jobIdSchema,
    step: z.int().min(0),
    rank: z.int().min(0),
  }),
  // H3 (timelines): remove abandoned steps of the job at L2 (prune.ts); allowed like `list`.
  z.object({
    op: z.literal('prune'),
    job: jobIdSchema,
    afterStep: pruneRequestSchema.shape.afterStep,
    timeline: pruneRequestSchema.shape.timeline,
  }),
  z.object({
    op: z.literal('get-shard'),
    job: jobIdSchema,
    step: z.int().min(0),
    rank: z.int().min(0),
  }),
]);
export type PeerRequest = z.infer<typeof peerRequestSchema>;

/**
 * The handshake every connection starts with (peer-auth.ts): the server's `challenge`, the
 * client's `hello`, the server's `welcome`. Nothing else is served before it completes.
 */
export const challengeSchema = z.object({ op: z.literal('challenge'), nonce: z.string().min(22) });

export const helloSchema = z.object({
  op: z.literal('hello'),
  job: jobIdSchema,
  attempt: z.int().min(0),
  from: z.string().min(1).max(253).regex(/^\S+$/),
  clientNonce: z.string().regex(/^[A-Za-z0-9_-]{22,86}$/),
  mac: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
});
export type Hello = z.infer<typeof helloSchema>;

export const welcomeSchema = z.object({ op: z.literal('welcome'), mac: z.string().min(1) });

/**
 * Error codes of peer replies that are not CubeError codes: the connection did not prove a key
 * (`UNAUTHENTICATED`), or asked for what its key does not grant (`FORBIDDEN`).
 */
export const peerRefusalCodes = ['UNAUTHENTICATED', 'FORBIDDEN'] as const;

/** A step a daemon holds replicas of (at L2), as `list` reports it. */
export interface ReplicaHolding {
  readonly step: number;
  /** The replica manifest's timeline (absent from daemons that predate timelines: read as 0). */
  readonly timeline?: number;
  readonly ranks: readonly number[];
  readonly bytes: number;
}

export type PeerReply =
  | { readonly op: 'ok'; readonly bytes?: number; readonly [key: string]: unknown }
  | {
      readonly op: 'error';
      readonly code: string;
      readonly message: string;
      /** On an `offer-shard`: the receiver could not connect to the sender. */
      readonly dialBack?: 'failed';
    };
