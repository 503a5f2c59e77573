import { z } from 'zod';
import type { Immutable } from './immutable.ts';
import { CheckpointLevelSchema } from './progress.ts';

// Each kind's `data` names what the kind needs; the objects are loose so a writer may add
// context (a message, a count) without a schema change, and readers keep what they do not know.
const nothing = z.looseObject({});
const withReason = z.looseObject({ reason: z.string().optional() });

/** Why a fault was detected. */
export const FaultCauseSchema = z.enum([
  'rank-exit',
  'heartbeat-timeout',
  'hang',
  'probe-failed',
  'injected',
  // A device the node's agent reports `failed` (ECC, Xid): node evidence behind a rank's exit.
  'device-failed',
]);
export type FaultCause = z.output<typeof FaultCauseSchema>;

/**
 * What a fault is, by the evidence on its nodes: `node` when a node shows node evidence
 * (missed heartbeats, failing probes, failed devices, its agent gone), `application` when a
 * rank failed on nodes that show none, `unknown` when the evidence singles out nothing.
 * Only `node` cordons a node.
 */
export const FaultClassificationSchema = z.enum(['application', 'node', 'unknown']);
export type FaultClassification = z.output<typeof FaultClassificationSchema>;

/** Why one node of a faulted job was, or was not, blamed. */
export const FaultBlameSchema = z.looseObject({
  nodeId: z.string(),
  node: z.string(),
  blamed: z.boolean(),
  why: z.string(),
});

function body<const K extends string, D extends z.ZodType>(kind: K, data: D) {
  return z.strictObject({
    kind: z.literal(kind),
    jobId: z.string().min(1).optional(),
    nodeId: z.string().min(1).optional(),
    rank: z.int().min(0).optional(),
    attempt: z.int().min(0).optional(),
    data,
  });
}

/**
 * What an event says, without its id and time: a discriminated union on `kind`, each kind
 * with its own `data`. `data` may be left out for kinds whose fields are all optional.
 */
export const EventBodySchema = z.discriminatedUnion('kind', [
  body(
    'job-submitted',
    z.looseObject({
      name: z.string(),
      priority: z.int().optional(),
      worldSize: z.int().optional(),
    }),
  ),
  body(
    'job-scheduled',
    // The placement itself is on the job; a writer may copy it here as it likes.
    z.looseObject({ explanation: z.array(z.string()).optional() }).prefault({}),
  ),
  body('job-waiting', z.looseObject({ reason: z.string() })),
  body('rank-launched', z.looseObject({ pid: z.int().nullable().optional() }).prefault({})),
  body('rank-running', z.looseObject({ pid: z.int().nullable().optional() }).prefault({})),
  body(
    'rank-exited',
    z
      .looseObject({
        exitCode: z.int().nullable().optional(),
        signal: z.string().nullable().optional(),
      })
      .prefault({}),
  ),
  body('job-running', nothing.prefault({})),
  body(
    'checkpoint-committed',
    z.looseObject({ level: CheckpointLevelSchema, step: z.int().min(0) }),
  ),
  body(
    'fault-detected',
    z.looseObject({
      cause: FaultCauseSchema,
      message: z.string().optional(),
      classification: FaultClassificationSchema.optional(),
      blame: z.array(FaultBlameSchema).optional(),
    }),
  ),
  body(
    'node-cordoned',
    z
      .looseObject({
        reason: z.string().optional(),
        // `straggler`: taken out by the straggler policy's `replace` action, not for a fault.
        by: z.enum(['user', 'fault', 'straggler']).optional(),
      })
      .prefault({}),
  ),
  body('node-uncordoned', withReason.prefault({})),
  body('spare-taken', z.looseObject({ replacesNodeId: z.string().optional() }).prefault({})),
  body(
    'job-restarting',
    z
      .looseObject({
        reason: z.string().optional(),
        restarts: z.int().min(0).optional(),
        backoffSeconds: z.number().min(0).optional(),
      })
      .prefault({}),
  ),
  body(
    'straggler',
    // A rank persistently slower than the rest of its gang (docs/control-protocol.md,
    // "Stragglers"): its median step time over the window against the others' median.
    z.looseObject({
      rank: z.int().min(0),
      nodeId: z.string(),
      node: z.string().optional(),
      stepTimeS: z.number().min(0),
      gangMedianS: z.number().min(0),
      ratio: z.number().min(0),
      windowSteps: z.int().min(1),
      steps: z.tuple([z.int().min(0), z.int().min(0)]),
      samples: z.int().min(1).optional(),
    }),
  ),
  body('job-restored', z.looseObject({ step: z.int().min(0), level: CheckpointLevelSchema })),
  body('job-resumed', z.looseObject({ step: z.int().min(0).optional() }).prefault({})),
  body('job-succeeded', withReason.prefault({})),
  body('job-failed', withReason.prefault({})),
  body('job-cancelled', withReason.prefault({})),
  body('node-joined', z.looseObject({ name: z.string(), rejoined: z.boolean() })),
  body('node-down', withReason.prefault({})),
  body('node-up', withReason.prefault({})),
]);

/** Every event kind. */
export const eventKinds = EventBodySchema.options.map((option) => option.shape.kind.value);
export type EventKind = z.output<typeof EventBodySchema>['kind'];

/** The envelope the store adds: a monotonic id and the time, ISO 8601 with milliseconds. */
export const EventStampSchema = z.strictObject({
  id: z.int().min(1),
  at: z.iso.datetime({ offset: false, precision: 3 }),
});

type EventOutput = z.output<typeof EventBodySchema> & z.output<typeof EventStampSchema>;

/** An event as stored and served: its body plus id and time. */
export const EventSchema: z.ZodType<EventOutput> = z.discriminatedUnion(
  'kind',
  // Zod cannot map a tuple of schemas and keep its type; the declared type above says it.
  EventBodySchema.options.map((option) => option.extend(EventStampSchema.shape)) as unknown as [
    z.ZodObject,
    ...z.ZodObject[],
  ],
) as unknown as z.ZodType<EventOutput>;

/** An event as stored and served (`at` is an ISO string; see docs/control-protocol.md). */
export type Event = Immutable<EventOutput>;

/** The event of one kind. */
export type EventOf<K extends EventKind> = Extract<Event, { readonly kind: K }>;

/**
 * An event to append. The store assigns the id, and the time unless `atMs` (epoch ms) is
 * given; `data` may be omitted where all its fields are optional.
 */
export type NewEvent = Immutable<z.input<typeof EventBodySchema>> & { readonly atMs?: number };
