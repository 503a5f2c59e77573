import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { jsonResponse, routeSchema, type ApiTypeProvider } from './api-schemas.ts';
import type { ComputeWorker } from './compute-pool.ts';
import { planBodySchema } from './plan-routes.ts';

/** Caps that keep one request from holding the worker for long. */
export const simulationLimits = {
  days: 90,
  trials: 200,
  policies: 6,
  /** Trials x simulated days, summed over policies. */
  trialDays: 4000,
  timeoutMs: 120_000,
} as const;

const simulateBodySchema = planBodySchema
  .omit({ top: true })
  .extend({
    days: z.number().positive().max(simulationLimits.days),
    trials: z.int().min(1).max(simulationLimits.trials).default(50),
    seed: z
      .int()
      .min(0)
      .max(2 ** 31)
      .default(1),
    /** As the `policies` of a `cube simulate --compare` file; checked by the simulator. */
    policies: z.array(z.unknown()).min(1).max(simulationLimits.policies).optional(),
  })
  .superRefine((body, ctx) => {
    const work = body.trials * body.days * (body.policies?.length ?? 1);
    if (work > simulationLimits.trialDays)
      ctx.addIssue({
        code: 'custom',
        path: ['trials'],
        message: `trials x days x policies is ${Math.round(work)}, over the server's limit of ${simulationLimits.trialDays}; use fewer trials, days or policies (or cube simulate)`,
      });
  });

const statistic = z.looseObject({ mean: z.number() });

/**
 * `cube simulate --json`'s report: the contract fields (design.md) of the first (baseline)
 * policy, then every policy's own results under `policies`.
 */
const spread = z.looseObject({ mean: z.number(), p5: z.number(), p95: z.number() });

/** One policy's results over the trials (the documented fields; the rest pass through). */
const PolicyResultSchema = z.looseObject({
  policy: z.string(),
  intervalMinutes: z.number(),
  intervalReason: z.string(),
  levels: z.string(),
  spareNodes: z.int(),
  goodput: spread,
  interruptions: statistic,
  humanInterventions: statistic,
  lostHours: z.record(z.string(), z.number()),
  progress: z.looseObject({ timesHours: z.array(z.number()), mean: z.array(z.number()) }),
});

export const SimulationReportSchema = z.looseObject({
  model: z.string(),
  gpus: z.int(),
  nodes: z.int(),
  stepTimeS: z.number(),
  failureModel: z.string(),
  days: z.number(),
  trials: z.int(),
  goodput: spread,
  interruptions: z.looseObject({
    mean: z.number(),
    p2_5: z.number(),
    p97_5: z.number(),
    byCause: z.record(z.string(), z.number()),
  }),
  humanInterventions: statistic,
  lostHours: z.looseObject({
    detection: z.number(),
    restart: z.number(),
    restore: z.number(),
    recompute: z.number(),
    checkpointStall: z.number(),
  }),
  pNoFault: z.record(z.string(), z.number()),
  pNoHuman: z.record(z.string(), z.number()),
  policies: z.array(PolicyResultSchema),
});
export type SimulationReport = z.output<typeof SimulationReportSchema>;

/**
 * The simulator over HTTP: `POST /api/v1/simulate` runs what `cube simulate --json` runs (the
 * planner's best plan, the default failure model, policies side by side) and answers its
 * report, in the planner's worker thread, within `simulationLimits`.
 */
export function registerSimRoutes(app: FastifyInstance, options: { compute: ComputeWorker }): void {
  app.withTypeProvider<ApiTypeProvider>().post(
    '/api/v1/simulate',
    {
      schema: routeSchema(
        { role: 'user' },
        {
          operationId: 'simulateJob',
          summary: 'Simulate a job over days',
          description:
            'A Monte Carlo simulation of the job over days: goodput, interruptions, lost time by category, per policy (as `cube simulate --json`). No feasible plan is 422.',
          tags: ['simulator'],
          body: simulateBodySchema,
          response: { 200: jsonResponse(SimulationReportSchema, 'The report.') },
          errors: [404, 422],
        },
      ),
      config: { access: { role: 'user' } },
    },
    async (request) =>
      (await options.compute.simulate(request.body, {
        timeoutMs: simulationLimits.timeoutMs,
      })) as SimulationReport,
  );
}
