import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiRoles, type StateStore } from '../store/index.ts';
import { requestToken } from './access.ts';
import type { StreamTickets } from './stream-tickets.ts';

const tokenName = z
  .string()
  .regex(/^[A-Za-z0-9._@-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_", "@" or "-"');

/**
 * API token management (admin only): `POST /api/v1/tokens` creates one (the secret is in this
 * reply only), `GET /api/v1/tokens` lists them (never the secret), `DELETE /api/v1/tokens/:id`
 * revokes one at once (by id, or by the name of a live one). And `POST /api/v1/stream-tickets`
 * (any role that reads) trades the caller's token for a single-use event stream ticket.
 */
export function registerTokenRoutes(
  app: FastifyInstance,
  options: { store: StateStore; tickets: StreamTickets },
): void {
  const { store, tickets } = options;
  const api = app.withTypeProvider<ZodTypeProvider>();
  const admin = { access: { role: 'admin' } } as const;

  api.post(
    '/api/v1/tokens',
    {
      schema: {
        body: z.strictObject({ name: tokenName, role: z.enum(apiRoles) }),
        tags: ['tokens'],
        description: 'Creates an API token with a role; the reply is the only time it is shown.',
      },
      config: admin,
    },
    async (request, reply) => {
      const { name, role } = request.body;
      const created = await store.createApiToken(name, { role });
      const info = (await store.listApiTokens()).find((t) => t.id === created.id);
      return reply.status(201).send({ ...info, token: created.token });
    },
  );

  api.get('/api/v1/tokens', { schema: { tags: ['tokens'] }, config: admin }, async () => ({
    tokens: await store.listApiTokens(),
  }));

  api.delete(
    '/api/v1/tokens/:id',
    {
      schema: { params: z.object({ id: z.string().min(1).max(128) }), tags: ['tokens'] },
      config: admin,
    },
    async (request) => store.revokeApiToken(request.params.id),
  );

  api.post(
    '/api/v1/stream-tickets',
    {
      schema: {
        tags: ['events'],
        description:
          'A single-use ticket for `GET /api/v1/stream?ticket=` (for browsers, whose EventSource sends no headers), good for 30 s, with the caller’s role and job scope.',
      },
      config: { access: { role: 'viewer' } },
    },
    async (request, reply) => reply.status(201).send(tickets.issue(requestToken(request))),
  );
}
