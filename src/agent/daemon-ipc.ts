// The messages between the node agent and its checkpoint daemon child (`cube ckpt daemon --ipc`),
// sent over Node's IPC channel. Both sides import these schemas; every message is validated on
// arrival, and one that does not parse is logged and ignored.
import { z } from 'zod';
import { levels } from '../ckpt/index.ts';
import { peerAccessSchema } from '../ckpt/daemon/index.ts';
import { peerSchema } from './protocol.ts';

const addressSchema = z.object({ host: z.string().min(1), port: z.int().min(0).max(65535) });
const jobId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/);
const registrationSchema = z.object({
  worldSize: z.int().min(1),
  localRanks: z.array(z.int().min(0)).min(1).readonly(),
  l3Every: z.int().min(1).optional(),
  everySteps: z.int().min(1).optional(),
  keep: z.partialRecord(z.enum(levels), z.int().min(1)).optional(),
});

/** Parent → child: what the agent learnt from a launch command (as `setL3Root`, `setReplicaPeer`, `setPeers`). */
export const daemonConfigureSchema = z.object({
  kind: z.literal('configure'),
  jobId,
  l3Root: z.string().min(1),
  replicaPeer: peerSchema.nullable(),
  peers: z.array(peerSchema),
  /** This node's peer keys and grants for the job's attempt (never logged, never on disk). */
  peerAccess: peerAccessSchema.optional(),
});
export type DaemonConfigure = z.infer<typeof daemonConfigureSchema>;

/** Parent → child: a rank registration the previous daemon had, replayed into a restarted one. */
export const daemonRegisterSchema = z.object({
  kind: z.literal('register'),
  jobId,
  rank: z.int().min(0),
  registration: registrationSchema,
});
export type DaemonRegister = z.infer<typeof daemonRegisterSchema>;

/** Every message the agent sends its daemon. */
export const toDaemonSchema = z.discriminatedUnion('kind', [
  daemonConfigureSchema,
  daemonRegisterSchema,
]);
export type ToDaemon = z.infer<typeof toDaemonSchema>;

/** Child → parent: listening (sent once, after the peer listener and the local API are up). */
export const daemonReadySchema = z.object({
  kind: z.literal('ready'),
  peer: addressSchema,
  socket: z.string().min(1),
});

/** Child → parent: a commit the daemon made (the daemon's `onCommit`). */
export const daemonCommittedSchema = z.object({
  kind: z.literal('committed'),
  job: jobId,
  level: z.enum(levels),
  step: z.int().min(0),
});

/** Child → parent: a rank registered; the agent keeps it to replay into a restarted daemon. */
export const daemonRegisteredSchema = z.object({
  kind: z.literal('registered'),
  jobId,
  rank: z.int().min(0),
  registration: registrationSchema,
});

/** Every message the daemon sends its agent. */
export const fromDaemonSchema = z.discriminatedUnion('kind', [
  daemonReadySchema,
  daemonCommittedSchema,
  daemonRegisteredSchema,
]);
export type FromDaemon = z.infer<typeof fromDaemonSchema>;

/** A one-line description of why `message` does not parse with `schema`, for the log. */
export function ipcIssue(schema: z.ZodType, message: unknown): string | null {
  const parsed = schema.safeParse(message);
  if (parsed.success) return null;
  const issue = parsed.error.issues[0];
  return `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`;
}
