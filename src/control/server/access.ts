import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CubeError } from '../../core/index.ts';
import type { Job, Node } from '../model/index.ts';
import type { ApiRole, ApiTokenInfo, StateStore } from '../store/index.ts';
import type { StreamTickets } from './stream-tickets.ts';

/** The API roles that read, in the order of what they may do: each may what the one before may. */
const readerRoles = ['viewer', 'user', 'admin'] as const;
export type ReaderRole = (typeof readerRoles)[number];

/**
 * Who may call a route, declared in its `config.access` (docs/control-protocol.md, "Access"):
 * - `public`: anyone (the dashboard's files, `/healthz`, `/readyz`, `openapi.json`);
 * - `join`: anyone, the handler checks the join token in the body;
 * - `node`: the node named by the `:nodeId` path parameter, by its credential;
 * - `metrics`: a token of any role (`metrics` included), or anyone with `--metrics-public`;
 * - `{ role }`: an API token of that role or a stronger one (viewer < user < admin);
 * - `{ role, ticket: true }`: the same, or a single-use stream ticket (`?ticket=`) issued to one.
 */
export type Access =
  'public' | 'join' | 'node' | 'metrics' | { readonly role: ReaderRole; readonly ticket?: true };

/** Who a request was authenticated as (set by the access hook before any handler runs). */
export type Principal =
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'token'; readonly token: ApiTokenInfo }
  | { readonly kind: 'node'; readonly node: Node };

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal: Principal;
  }
}

/** One registered route and its rule. */
export interface RouteAccess {
  readonly method: string;
  readonly url: string;
  readonly access: Access;
}

const tables = new WeakMap<FastifyInstance, RouteAccess[]>();

/** Every route registered on `app` with its access rule, in registration order. */
export function routeAccessTable(app: FastifyInstance): readonly RouteAccess[] {
  return tables.get(app) ?? [];
}

export interface AccessOptions {
  readonly store: StateStore;
  readonly tickets: StreamTickets;
  /** Serve `/metrics` without a token (`cube server --metrics-public`). */
  readonly metricsPublic?: boolean;
}

/** The bearer token of a request's `Authorization` header, or null. Never the URL. */
export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header === undefined) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1] ?? null;
}

/** True when `role` may do what `needed` may. */
export function roleAtLeast(role: ApiRole, needed: ReaderRole): boolean {
  if (role === 'metrics') return false;
  return readerRoles.indexOf(role) >= readerRoles.indexOf(needed);
}

/** Describes a route's rule in one word or two, for errors and the route table test. */
export function describeAccess(access: Access): string {
  if (typeof access === 'string') return access;
  return access.ticket === true ? `${access.role}+ticket` : access.role;
}

function unauthorized(message: string): CubeError {
  return new CubeError('UNAUTHORIZED', message, {
    hint: 'send `Authorization: Bearer <token>`; `cube token create` makes one',
  });
}

function forbidden(message: string): CubeError {
  return new CubeError('FORBIDDEN', message);
}

/**
 * Deny by default, decided on the route: every route must declare `config.access` (a route
 * without one makes `onRoute` throw at startup), and one `onRequest` hook, which runs after
 * routing and before the body is read, enforces it. The decision uses the route the router
 * matched, never the raw URL, so encoded or absolute-form paths cannot slip past it.
 */
export function installAccessControl(app: FastifyInstance, options: AccessOptions): void {
  const { store, tickets } = options;
  // null until the hook below sets it, first thing, on every request.
  app.decorateRequest('principal', null as never);
  const table: RouteAccess[] = [];
  tables.set(app, table);
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (access === undefined)
      throw new CubeError(
        'INTERNAL',
        `route ${String(route.method)} ${route.url} declares no access rule (config.access)`,
        { where: { path: route.url } },
      );
    for (const method of Array.isArray(route.method) ? route.method : [route.method])
      table.push({ method: String(method), url: route.url ?? route.path, access });
  });
  app.addHook('onRequest', async (request) => {
    request.principal = { kind: 'anonymous' };
    // No route matched: the not-found handler answers (a 404, or the dashboard's index.html).
    if (request.is404) return;
    const access = request.routeOptions.config.access;
    if (access === undefined) throw forbidden('this route declares no access rule');
    if (access === 'public' || access === 'join') return;
    if (access === 'node') {
      const nodeId = (request.params as { nodeId?: unknown }).nodeId;
      const token = bearerToken(request);
      if (token === null || typeof nodeId !== 'string')
        throw unauthorized('missing node credential (Authorization: Bearer <credential>)');
      const node = await store.authenticateNode(nodeId, token);
      if (node === null) throw unauthorized('missing or bad node credential');
      request.principal = { kind: 'node', node };
      return;
    }
    const token = bearerToken(request);
    if (token === null) {
      if (access === 'metrics' && options.metricsPublic === true) return;
      if (typeof access === 'object' && access.ticket === true) {
        const ticket = (request.query as { ticket?: unknown }).ticket;
        if (typeof ticket === 'string') {
          const held = tickets.redeem(ticket);
          if (held === null) throw unauthorized('the stream ticket is unknown, used or expired');
          // A ticket carries its holder's rights as they were; a revoked holder loses them.
          const current = (await store.listApiTokens()).find((t) => t.id === held.id);
          if (current === undefined || current.revokedAt !== null)
            throw unauthorized('the stream ticket belongs to a revoked token');
          request.principal = { kind: 'token', token: current };
          if (!roleAtLeast(current.role, access.role))
            throw forbidden(`this route needs role ${access.role} or stronger`);
          return;
        }
      }
      throw unauthorized('missing API token (Authorization: Bearer <token>)');
    }
    const info = await store.authenticateApiToken(token);
    if (info === null) {
      if (access === 'metrics' && options.metricsPublic === true) return;
      throw unauthorized('bad or revoked API token');
    }
    request.principal = { kind: 'token', token: info };
    if (access === 'metrics') return;
    if (!roleAtLeast(info.role, access.role))
      throw forbidden(
        `a ${info.role} token may not do this: it needs role ${access.role} or stronger`,
      );
  });
}

/** The API token a request holds (routes with a role rule always have one). */
export function requestToken(request: FastifyRequest): ApiTokenInfo {
  const p = request.principal;
  if (p.kind !== 'token') throw unauthorized('this route needs an API token');
  return p.token;
}

/**
 * True when the request may see `job`: a `user` token sees the jobs it submitted, `viewer`
 * and `admin` see every job.
 */
export function maySeeJob(principal: Principal, job: Pick<Job, 'owner'>): boolean {
  if (principal.kind !== 'token') return false;
  return principal.token.role !== 'user' || job.owner === principal.token.id;
}

/** The owner filter for job lists: the token id for `user` tokens, else null (all jobs). */
export function ownerScope(principal: Principal): string | null {
  return principal.kind === 'token' && principal.token.role === 'user' ? principal.token.id : null;
}
