import { z } from 'zod';
import type { Immutable } from './immutable.ts';

/** The kinds of device a node offers and a job asks for. */
export const DeviceKindSchema = z.enum(['cpu', 'nvidia', 'amd']);
export type DeviceKind = z.output<typeof DeviceKindSchema>;

/** A device's health as the node's agent last saw it. */
export const DeviceHealthSchema = z.enum(['ok', 'degraded', 'failed']);
export type DeviceHealth = z.output<typeof DeviceHealthSchema>;

/** One device of a node. */
export const DeviceSchema = z.strictObject({
  index: z.int().min(0),
  kind: DeviceKindSchema,
  model: z.string().min(1),
  memoryBytes: z.int().min(0),
  health: DeviceHealthSchema,
});
export type Device = Immutable<z.output<typeof DeviceSchema>>;

/**
 * Where a node sits (`server`, `superNode`, `pod`, which placement uses to keep a gang close)
 * plus free-form `key=value` labels.
 */
export const NodeLabelsSchema = z
  .object({
    server: z.string().min(1).optional(),
    superNode: z.string().min(1).optional(),
    pod: z.string().min(1).optional(),
  })
  .catchall(z.string());
export type NodeLabels = Immutable<z.output<typeof NodeLabelsSchema>>;

/** `worker` nodes run jobs; `spare` nodes stand by to replace a failed one. */
export const NodeRoleSchema = z.enum(['worker', 'spare']);
export type NodeRole = z.output<typeof NodeRoleSchema>;

/**
 * `ready`: heartbeating, schedulable. `cordoned`: heartbeating, not schedulable (by a user or
 * a fault). `down`: missed heartbeats. `left`: replaced by a newer node of the same name.
 */
export const NodeStateSchema = z.enum(['ready', 'cordoned', 'down', 'left']);
export type NodeState = z.output<typeof NodeStateSchema>;

/** One health probe's last result. */
export const ProbeResultSchema = z.looseObject({
  name: z.string().min(1),
  ok: z.boolean(),
  message: z.string().optional(),
});

/**
 * The health an agent reports with its heartbeat. The known fields are typed; anything else
 * an agent adds is kept as it came.
 */
export const NodeHealthSchema = z.looseObject({
  probes: z.array(ProbeResultSchema).optional(),
  devices: z.array(DeviceSchema).optional(),
  freeBytes: z
    .looseObject({ l1: z.number().nullable().optional(), l3: z.number().nullable().optional() })
    .optional(),
});
export type NodeHealth = Immutable<z.output<typeof NodeHealthSchema>>;

/** A node as the control plane knows it. Times are epoch milliseconds. */
export const NodeSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  state: NodeStateSchema,
  role: NodeRoleSchema,
  labels: NodeLabelsSchema,
  devices: z.array(DeviceSchema),
  hostMemoryBytes: z.int().min(0),
  /** The address peers reach the node's checkpoint daemon at, as the control plane saw it. */
  host: z.string().nullable(),
  ckptPeerPort: z.int().min(1).max(65535).nullable(),
  joinedAt: z.int(),
  lastHeartbeatAt: z.int().nullable(),
  health: NodeHealthSchema.nullable(),
});
export type Node = Immutable<z.output<typeof NodeSchema>>;
