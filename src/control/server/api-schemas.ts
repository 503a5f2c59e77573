import type { FastifySchema, FastifyTypeProvider } from 'fastify';
import { z } from 'zod';
import type { $ZodType } from 'zod/v4/core';
import { errorCodes, type CubeErrorCode, type ErrorWhere } from '../../core/index.ts';
import {
  EventSchema,
  JobSchema,
  NodeSchema,
  ProgressSampleSchema,
  type Immutable,
} from '../model/index.ts';
import type { Access } from './access.ts';

/**
 * fastify-type-provider-zod's provider, except that a handler may answer the model's readonly
 * values (`Immutable<...>`) as they come from the store: the serializer checks them at run time
 * against the same schema either way.
 */
export interface ApiTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends $ZodType ? z.output<this['schema']> : unknown;
  serializer: this['schema'] extends $ZodType ? Immutable<z.output<this['schema']>> : unknown;
}

/**
 * The named schemas of the OpenAPI document (`components.schemas`): a schema added here is
 * written once in the document and referenced by `$ref` wherever a route uses it, so that a
 * generated client (openapi-typescript) names it. Input variants get an `Input` suffix.
 */
export const apiSchemaRegistry = z.registry<{ id: string; description?: string }>();

/** Registers `schema` as the component `id` and returns it. */
function named<T extends z.ZodType>(id: string, schema: T, description?: string): T {
  apiSchemaRegistry.add(schema, { id, ...(description === undefined ? {} : { description }) });
  return schema;
}

/** Where an error happened (src/core's `ErrorWhere`). */
export const ErrorWhereSchema = z.strictObject({
  file: z.string().optional(),
  path: z.string().optional(),
  field: z.string().optional(),
  allowed: z.array(z.string()).optional(),
  rank: z.int().optional(),
  node: z.string().optional(),
});

const errorCodeValues = Object.keys(errorCodes) as [CubeErrorCode, ...CubeErrorCode[]];

/**
 * The one error body of the API, whatever failed (a CubeError, a request that does not match
 * its schema, an unknown route, the access check): `{error: {code, message, where, hint?}}`.
 */
export const ErrorBodySchema = named(
  'ErrorBody',
  z.strictObject({
    error: z.strictObject({
      code: z.enum(errorCodeValues),
      message: z.string(),
      where: ErrorWhereSchema,
      hint: z.string().optional(),
    }),
  }),
  'An error: a stable `code` (docs/api.md lists them), what is wrong, and where.',
);
export type ErrorBody = z.output<typeof ErrorBodySchema>;

/** The error body for `code`: the only way the server writes one. */
export function errorBody(
  code: CubeErrorCode,
  message: string,
  where: ErrorWhere = {},
  hint?: string,
): ErrorBody {
  // Only the known parts of `where`: an error body never fails its own schema.
  const known: z.output<typeof ErrorWhereSchema> = {};
  if (where.file !== undefined) known.file = where.file;
  if (where.path !== undefined) known.path = where.path;
  if (where.field !== undefined) known.field = where.field;
  if (where.allowed !== undefined) known.allowed = [...where.allowed];
  if (where.rank !== undefined) known.rank = where.rank;
  if (where.node !== undefined) known.node = where.node;
  return { error: { code, message, where: known, ...(hint === undefined ? {} : { hint }) } };
}

// The model's values as the API serves them, each one component.
export const JobResponseSchema = named('Job', JobSchema, 'A job as the control plane knows it.');
export const NodeResponseSchema = named(
  'Node',
  NodeSchema,
  'A node as the control plane knows it.',
);
export const EventResponseSchema = named(
  'Event',
  EventSchema,
  'One event of the durable log: a kind, its data, a monotonic id and an ISO time.',
);
export const ProgressSampleResponseSchema = named(
  'ProgressSample',
  ProgressSampleSchema,
  'One progress report of one rank.',
);

/** `{ok: true}`: an answer with nothing else to say. */
export const OkSchema = z.strictObject({ ok: z.literal(true) });

const statusMeaning: Record<number, string> = {
  400: 'The request does not match its schema, or a value in it is invalid.',
  401: 'The credential is missing, unknown or revoked.',
  403: 'The credential is valid but may not do this.',
  404: 'The id names nothing the caller may see.',
  413: 'The body is larger than the server takes (16 MiB).',
  415: 'The body is of a media type the route does not take.',
  422: 'The request is valid but cannot be met now.',
  500: 'An unexpected failure (a bug in Cube).',
  507: 'A storage read or write failed.',
};

/**
 * A response as the document and the serializer take it: `schema` under `application/json`
 * with a description (so a named schema stays a `$ref` and still says what the answer means).
 */
export function jsonResponse<T extends z.ZodType>(
  schema: T,
  description: string,
): { description: string; content: { 'application/json': { schema: T } } } {
  return { description, content: { 'application/json': { schema } } };
}

/** The error answers `statuses`, each the one error body with what it means. */
export function errorResponses(
  ...statuses: readonly number[]
): Record<number, ReturnType<typeof jsonResponse<typeof ErrorBodySchema>>> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      jsonResponse(ErrorBodySchema, statusMeaning[status] ?? `HTTP ${status}`),
    ]),
  );
}

/** The OpenAPI security schemes (docs/api.md, "Security"). */
export const securitySchemes = {
  apiToken: {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API token (`cube token create`) with a role: viewer < user < admin; `metrics` reads /metrics only.',
  },
  nodeCredential: {
    type: 'http',
    scheme: 'bearer',
    description:
      "A node's credential, issued by `POST /api/v1/agents/join`; good only for that node's own `/agents/{nodeId}/...` routes.",
  },
  streamTicket: {
    type: 'apiKey',
    in: 'query',
    name: 'ticket',
    description:
      'A single-use ticket from `POST /api/v1/stream-tickets`, for browsers, whose EventSource sends no headers.',
  },
} as const;

/** The OpenAPI `security` of a route with this access rule: who the document says may call it. */
export function securityOf(access: Access): Record<string, string[]>[] {
  if (access === 'public' || access === 'join') return [];
  if (access === 'node') return [{ nodeCredential: [] }];
  if (access === 'metrics') return [{ apiToken: [] }];
  return access.ticket === true ? [{ apiToken: [] }, { streamTicket: [] }] : [{ apiToken: [] }];
}

/** The error answers the access check itself sends for a route with this rule. */
export function accessErrorStatuses(access: Access): readonly (401 | 403)[] {
  if (access === 'public' || access === 'join') return [];
  if (access === 'node') return [401];
  return [401, 403];
}

/**
 * A route's schema: its own parts, plus its `security` and the error answers of its access
 * rule (401, 403), of validation (400 when it takes input), of its body (413, 415) and 500, so that every status the
 * route can send is declared and serialized with the one error body.
 */
export function routeSchema<S extends FastifySchema & { response?: Record<number, unknown> }>(
  access: Access,
  schema: S & {
    operationId: string;
    summary: string;
    tags: readonly string[];
    /** Error statuses of the handler itself (404, 409, 422...). */
    errors?: readonly number[];
  },
): S {
  const { errors = [], ...rest } = schema;
  const takesInput =
    schema.body !== undefined || schema.querystring !== undefined || schema.params !== undefined;
  // Fastify itself answers a body too large (413) or of an unknown media type (415).
  const statuses = [
    ...(takesInput ? [400] : []),
    ...(schema.body === undefined ? [] : [413, 415]),
    ...accessErrorStatuses(access),
    ...errors,
    500,
  ].sort((a, b) => a - b);
  return {
    ...rest,
    tags: [...schema.tags],
    security: securityOf(access),
    response: { ...errorResponses(...statuses), ...schema.response },
  } as unknown as S;
}
