import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { listAccelerators } from '../../hardware/index.ts';
import { listModels, zooEntry } from '../../zoo/index.ts';
import { jsonResponse, routeSchema, type ApiTypeProvider } from './api-schemas.ts';
import { ComputeWorker } from './compute-pool.ts';

/** How long one plan may take before it is stopped. */
export const planTimeoutMs = 60_000;

const dimension = z.int().min(1).max(4096);

/** Pinned plan dimensions, as `cube plan`'s flags pin them. */
export const planPinsSchema = z.strictObject({
  tp: dimension.optional(),
  pp: dimension.optional(),
  vpp: dimension.optional(),
  cp: dimension.optional(),
  ep: dimension.optional(),
  sp: z.boolean().optional(),
  microBatch: dimension.optional(),
  zero: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]).optional(),
  recompute: z.enum(['none', 'selective', 'full']).optional(),
  offload: z.enum(['none', 'optimizer', 'all']).optional(),
});

/** What to plan: a zoo model id (not a file: the server reads no paths a client names). */
export const planBodySchema = z.strictObject({
  model: z.string().min(1).max(200),
  accelerator: z.string().min(1).max(64),
  gpus: z.int().min(1).max(100_000),
  seqLen: z.int().min(1).max(1_048_576).optional(),
  globalBatch: z.int().min(1).max(10_000_000).optional(),
  pins: planPinsSchema.optional(),
  top: z.int().min(1).max(50).optional(),
});

/** The models and accelerators the planner takes. */
export const PlanOptionsSchema = z.strictObject({
  models: z.array(
    z.strictObject({
      id: z.string(),
      family: z.string().nullable(),
      name: z.string(),
      params: z.number(),
      activeParams: z.number(),
    }),
  ),
  accelerators: z.array(
    z.strictObject({
      id: z.string(),
      vendor: z.string(),
      name: z.string(),
      memoryGiB: z.number(),
      bf16Tflops: z.number().nullable(),
    }),
  ),
});
export type PlanOptions = z.output<typeof PlanOptionsSchema>;

/** One plan as `cube plan --json` prints it (the documented fields; the cost breakdown too). */
export const PlanSchema = z.looseObject({
  tp: z.int(),
  pp: z.int(),
  vpp: z.int(),
  dp: z.int(),
  cp: z.int(),
  ep: z.int(),
  sp: z.boolean(),
  zero: z.int(),
  microBatch: z.int(),
  gradAccum: z.int(),
  recompute: z.enum(['none', 'selective', 'full']),
  offload: z.enum(['none', 'optimizer', 'all']),
  memoryGiB: z.number(),
  stepTimeS: z.number(),
  tokensPerS: z.number(),
  tflopsPerGpu: z.number(),
  mfu: z.number(),
  scalingEfficiency: z.number().nullable(),
  /** Bytes per GPU by kind on the worst stage (weights, grads, optimizer, activations, ...). */
  memory: z.record(z.string(), z.number()),
  /** Seconds per step by part (compute, tp, cp, ep, pp, bubble, dp, optimizer, offload). */
  time: z.record(z.string(), z.number()),
  checkpointBytesPerGpu: z.number(),
});

/** `cube plan --json`'s answer: plans best first, or none and the reason. */
export const PlanResultSchema = z.strictObject({
  model: z.string(),
  accelerator: z.string(),
  gpus: z.int(),
  seqLen: z.int(),
  globalBatch: z.int(),
  plans: z.array(PlanSchema),
  reason: z.string().optional(),
});
export type PlanResult = z.output<typeof PlanResultSchema>;

let choices: PlanOptions | null = null;

/**
 * The planner over HTTP: `GET /api/v1/plan/options` (the models and accelerators to choose
 * from) and `POST /api/v1/plan` (`planJob`, answered as `cube plan --json` prints it). Plans
 * run in a worker thread, one at a time, stopped after `planTimeoutMs`. Returns that worker
 * for the simulator's routes to share; it stops when the app closes.
 */
export function registerPlanRoutes(app: FastifyInstance): ComputeWorker {
  const compute = new ComputeWorker();
  app.addHook('onClose', async () => compute.close());
  const api = app.withTypeProvider<ApiTypeProvider>();

  api.get(
    '/api/v1/plan/options',
    {
      schema: routeSchema(
        { role: 'viewer' },
        {
          operationId: 'getPlanOptions',
          summary: 'List what the planner takes',
          description: 'The zoo models and catalog accelerators the planner takes.',
          tags: ['planner'],
          response: { 200: jsonResponse(PlanOptionsSchema, 'The models and accelerators.') },
        },
      ),
      config: { access: { role: 'viewer' } },
    },
    () => {
      return (choices ??= {
        models: listModels().map((m) => {
          const e = zooEntry(m);
          return {
            id: e.id,
            family: e.family,
            name: m.name,
            params: e.params,
            activeParams: e.activeParams,
          };
        }),
        accelerators: listAccelerators().map((a) => ({
          id: a.id,
          vendor: a.vendor,
          name: a.name,
          memoryGiB: a.memoryGiB,
          bf16Tflops: a.peakTflops.bf16,
        })),
      });
    },
  );

  api.post(
    '/api/v1/plan',
    {
      schema: routeSchema(
        { role: 'user' },
        {
          operationId: 'planJob',
          summary: 'Plan the parallelism of a model',
          description:
            'Ranked parallelism plans for a model on N accelerators in their standard servers, as `cube plan --json` prints them. No feasible plan: `plans: []` and `reason`. An unknown model or accelerator is 404.',
          tags: ['planner'],
          body: planBodySchema,
          response: { 200: jsonResponse(PlanResultSchema, 'The plans, best first.') },
          errors: [404, 422],
        },
      ),
      // Computation, not reading: it takes the planner's worker, so viewers may not.
      config: { access: { role: 'user' } },
    },
    async (request) =>
      (await compute.plan(request.body, { timeoutMs: planTimeoutMs })) as PlanResult,
  );

  return compute;
}
