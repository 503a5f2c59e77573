import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
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

/**
 * The simulator over HTTP: `POST /api/v1/simulate` runs what `cube simulate --json` runs (the
 * planner's best plan, the default failure model, policies side by side) and answers its
 * report, in the planner's worker thread, within `simulationLimits`.
 */
export function registerSimRoutes(app: FastifyInstance, options: { compute: ComputeWorker }): void {
  app.withTypeProvider<ZodTypeProvider>().post(
    '/api/v1/simulate',
    {
      schema: {
        body: simulateBodySchema,
        tags: ['simulator'],
        description:
          'A Monte Carlo simulation of the job over days: goodput, interruptions, lost time by category, per policy (as `cube simulate --json`).',
      },
      config: { access: { role: 'user' } },
    },
    async (request) =>
      options.compute.simulate(request.body, { timeoutMs: simulationLimits.timeoutMs }),
  );
}
