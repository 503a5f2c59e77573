import { z } from 'zod';
import {
  DeviceSchema,
  JobStateSchema,
  NodeHealthSchema,
  NodeLabelsSchema,
  NodeRoleSchema,
  NodeStateSchema,
  PlacementSchema,
} from '../model/index.ts';

// Every implementation checks patches with these before writing, so a bad value fails the
// same way (INVALID_VALUE naming the field) whichever database is underneath.

const epochMs = z.int().min(0);

/** The shape of a {@link import('./state-store.ts').JobPatch}. */
export const JobPatchSchema = z.strictObject({
  state: JobStateSchema.optional(),
  attempt: z.int().min(0).optional(),
  restarts: z.int().min(0).optional(),
  placement: PlacementSchema.nullable().optional(),
  placementExplanation: z.array(z.string()).optional(),
  reason: z.string().nullable().optional(),
  startedAt: epochMs.nullable().optional(),
  endedAt: epochMs.nullable().optional(),
  expectState: z.union([JobStateSchema, z.array(JobStateSchema)]).optional(),
});

/** The shape of a {@link import('./state-store.ts').NodePatch}. */
export const NodePatchSchema = z.strictObject({
  state: NodeStateSchema.optional(),
  role: NodeRoleSchema.optional(),
  labels: NodeLabelsSchema.optional(),
  devices: z.array(DeviceSchema).optional(),
  hostMemoryBytes: z.int().min(0).optional(),
  host: z.string().nullable().optional(),
  ckptPeerPort: z.int().min(1).max(65535).nullable().optional(),
  lastHeartbeatAt: epochMs.nullable().optional(),
  health: NodeHealthSchema.nullable().optional(),
  expectState: z.union([NodeStateSchema, z.array(NodeStateSchema)]).optional(),
});

/** The shape of a {@link import('./state-store.ts').NodeJoin}. */
export const NodeJoinSchema = z.strictObject({
  name: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
      'must be 1 to 63 characters of letters, digits, ., _ and -',
    ),
  labels: NodeLabelsSchema,
  devices: z.array(DeviceSchema),
  hostMemoryBytes: z.int().min(0),
  role: NodeRoleSchema.optional(),
  host: z.string().nullable().optional(),
  ckptPeerPort: z.int().min(1).max(65535).nullable().optional(),
  credential: z.string().nullable().optional(),
  now: epochMs.optional(),
});
