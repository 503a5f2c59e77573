import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { StateStore } from '../store/index.ts';
import { jsonResponse, type ApiTypeProvider } from './api-schemas.ts';

export const HealthSchema = z.strictObject({ ok: z.boolean() });

/**
 * The public routes of the process itself: the OpenAPI document, liveness (`/healthz`: the
 * process answers) and readiness (`/readyz`: the store answers too).
 */
export function registerSystemRoutes(app: FastifyInstance, options: { store: StateStore }): void {
  const { store } = options;
  const api = app.withTypeProvider<ApiTypeProvider>();
  const open = { access: 'public' } as const;

  api.get(
    '/api/v1/openapi.json',
    {
      schema: {
        operationId: 'getOpenApiDocument',
        summary: 'This document',
        tags: ['system'],
        security: [],
        response: {
          200: jsonResponse(z.looseObject({}), 'The OpenAPI 3.1 document of this API.'),
        },
      },
      config: open,
    },
    () => app.swagger() as unknown as Record<string, unknown>,
  );

  api.get(
    '/healthz',
    {
      schema: {
        operationId: 'getHealth',
        summary: 'Liveness: the process answers',
        tags: ['system'],
        security: [],
        response: { 200: jsonResponse(HealthSchema, 'Alive.') },
      },
      config: open,
    },
    () => ({ ok: true }),
  );

  api.get(
    '/readyz',
    {
      schema: {
        operationId: 'getReadiness',
        summary: 'Readiness: the store answers',
        tags: ['system'],
        security: [],
        response: {
          200: jsonResponse(HealthSchema, 'Ready.'),
          503: jsonResponse(HealthSchema, 'The store does not answer.'),
        },
      },
      config: open,
    },
    async (_request, reply) => {
      try {
        await store.lastEventId();
        return { ok: true };
      } catch {
        return reply.status(503).send({ ok: false });
      }
    },
  );
}
