import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiRoles, type StateStore } from '../store/index.ts';
import {
  apiSchemaRegistry,
  jsonResponse,
  routeSchema,
  type ApiTypeProvider,
} from './api-schemas.ts';

const tokenName = z
  .string()
  .regex(/^[A-Za-z0-9._@-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_", "@" or "-"');

export const TokenCreateBodySchema = z.strictObject({ name: tokenName, role: z.enum(apiRoles) });

/** An API token as listed: never its secret. */
export const TokenInfoSchema = z.strictObject({
  id: z.string(),
  name: z.string(),
  role: z.enum(apiRoles),
  createdAt: z.int(),
  revokedAt: z.int().nullable(),
});
apiSchemaRegistry.add(TokenInfoSchema, {
  id: 'TokenInfo',
  description: 'An API token as listed (never its secret).',
});
export type TokenInfo = z.output<typeof TokenInfoSchema>;

/** A token just created: the only answer that holds its secret. */
export const CreatedTokenSchema = TokenInfoSchema.extend({
  token: z.string().describe('the secret; shown only in this reply'),
});
export type CreatedToken = z.output<typeof CreatedTokenSchema>;

export const TokenListSchema = z.strictObject({ tokens: z.array(TokenInfoSchema) });
export type TokenList = z.output<typeof TokenListSchema>;

/**
 * API token management (admin only): `POST /api/v1/tokens` creates one (the secret is in this
 * reply only), `GET /api/v1/tokens` lists them (never the secret), `DELETE /api/v1/tokens/:id`
 * revokes one at once (by id, or by the name of a live one).
 */
export function registerTokenRoutes(app: FastifyInstance, options: { store: StateStore }): void {
  const { store } = options;
  const api = app.withTypeProvider<ApiTypeProvider>();
  const admin = { access: { role: 'admin' } } as const;

  api.post(
    '/api/v1/tokens',
    {
      schema: routeSchema(admin.access, {
        operationId: 'createToken',
        summary: 'Create an API token',
        description: 'Creates an API token with a role; the reply is the only time it is shown.',
        tags: ['tokens'],
        body: TokenCreateBodySchema,
        response: { 201: jsonResponse(CreatedTokenSchema, 'The token, with its secret.') },
      }),
      config: admin,
    },
    async (request, reply) => {
      const { name, role } = request.body;
      const created = await store.createApiToken(name, { role });
      const info = (await store.listApiTokens()).find((t) => t.id === created.id);
      return reply.status(201).send({
        id: created.id,
        name,
        role,
        createdAt: info?.createdAt ?? Date.now(),
        revokedAt: info?.revokedAt ?? null,
        token: created.token,
      });
    },
  );

  api.get(
    '/api/v1/tokens',
    {
      schema: routeSchema(admin.access, {
        operationId: 'listTokens',
        summary: 'List API tokens',
        tags: ['tokens'],
        response: {
          200: jsonResponse(TokenListSchema, 'Every token, revoked ones included; no secrets.'),
        },
      }),
      config: admin,
    },
    async () => ({ tokens: await store.listApiTokens() }),
  );

  api.delete(
    '/api/v1/tokens/:id',
    {
      schema: routeSchema(admin.access, {
        operationId: 'revokeToken',
        summary: 'Revoke an API token',
        description: 'At once; by id, or by the name of a token not yet revoked.',
        tags: ['tokens'],
        params: z.object({ id: z.string().min(1).max(128) }),
        response: { 200: jsonResponse(TokenInfoSchema, 'The token after it.') },
        errors: [404],
      }),
      config: admin,
    },
    async (request) => store.revokeApiToken(request.params.id),
  );
}
