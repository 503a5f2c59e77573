import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Event } from '../model/index.ts';
import type { StateStore } from '../store/index.ts';
import { ownerScope, requestToken, type Principal } from './access.ts';
import { jsonResponse, routeSchema, type ApiTypeProvider } from './api-schemas.ts';
import { EventListSchema, visibleJob } from './job-routes.ts';
import type { StreamTickets } from './stream-tickets.ts';

export const EventsQuerySchema = z.object({
  after: z.coerce.number().int().min(0).optional().describe('only events with a greater id'),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});

export const StreamQuerySchema = z.object({
  job: z.string().optional().describe("only this job's events"),
  after: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe('replay the log after this id first (or `Last-Event-ID`)'),
  ticket: z.string().optional().describe('a stream ticket, for browsers'),
});

export const StreamTicketSchema = z.strictObject({
  ticket: z.string(),
  expiresInS: z.int().min(1),
});
export type StreamTicket = z.output<typeof StreamTicketSchema>;

export interface EventRoutesOptions {
  readonly store: StateStore;
  readonly tickets: StreamTickets;
}

/**
 * The event log: `GET /api/v1/events` (a page of it), `GET /api/v1/stream` (server-sent events:
 * the durable log first, then live) and `POST /api/v1/stream-tickets` (single-use tickets that
 * let a browser's EventSource open the stream without a token in the URL).
 */
export function registerEventRoutes(app: FastifyInstance, options: EventRoutesOptions): void {
  const { store, tickets } = options;
  const api = app.withTypeProvider<ApiTypeProvider>();
  const viewer = { access: { role: 'viewer' } } as const;

  /**
   * Which events a caller may see: all for viewers and admins; for a `user`, the cluster's
   * (no job) and those of its own jobs.
   */
  async function visibleTo(principal: Principal): Promise<(e: Event) => boolean> {
    const owner = ownerScope(principal);
    if (owner === null) return () => true;
    const own = new Set((await store.listJobs()).filter((j) => j.owner === owner).map((j) => j.id));
    return (e) => e.jobId === undefined || own.has(e.jobId);
  }

  api.get(
    '/api/v1/events',
    {
      schema: routeSchema(viewer.access, {
        operationId: 'listEvents',
        summary: 'List events',
        description:
          "A page of the event log in id order: the cluster's events and those of the jobs the caller may see.",
        tags: ['events'],
        querystring: EventsQuerySchema,
        response: { 200: jsonResponse(EventListSchema, 'At most `limit` events.') },
      }),
      config: viewer,
    },
    async (request) => {
      const events = await store.listEvents({
        ...(request.query.after === undefined ? {} : { afterId: request.query.after }),
        limit: request.query.limit,
      });
      const visible = await visibleTo(request.principal);
      return { events: events.filter(visible) };
    },
  );

  api.post(
    '/api/v1/stream-tickets',
    {
      schema: routeSchema(viewer.access, {
        operationId: 'createStreamTicket',
        summary: 'Get a ticket for the event stream',
        tags: ['events'],
        description:
          'A single-use ticket for `GET /api/v1/stream?ticket=` (for browsers, whose EventSource sends no headers), good for 30 s, with the caller’s role and job scope.',
        response: { 201: jsonResponse(StreamTicketSchema, 'The ticket.') },
      }),
      config: viewer,
    },
    async (request, reply) => reply.status(201).send(tickets.issue(requestToken(request))),
  );

  const streamAccess = { role: 'viewer', ticket: true } as const;
  // Server-sent events: the durable log first (after `Last-Event-ID` or `?after=`), then live.
  api.get(
    '/api/v1/stream',
    {
      schema: routeSchema(streamAccess, {
        operationId: 'streamEvents',
        summary: 'Follow the event log live',
        tags: ['events'],
        querystring: StreamQuerySchema,
        description:
          'Server-sent events, each `id: <event id>`, `event: <kind>`, `data: <Event as JSON>`. Authenticated by `Authorization: Bearer` or, for browsers, a single-use `?ticket=` from `POST /api/v1/stream-tickets`; never by a token in the URL.',
        response: {
          200: {
            description: 'The stream; it stays open.',
            content: { 'text/event-stream': { schema: z.string() } },
          },
        },
        errors: [404],
      }),
      config: { access: streamAccess },
    },
    async (request, reply) => {
      const jobId = request.query.job;
      if (jobId !== undefined) await visibleJob(store, jobId, request.principal);
      const owner = ownerScope(request.principal);
      // For a `user`: whether each job is its own (looked up once per job, then remembered).
      const owned = new Map<string, boolean>();
      const visible = async (event: Event): Promise<boolean> => {
        if (owner === null || event.jobId === undefined) return true;
        let mine = owned.get(event.jobId);
        if (mine === undefined) {
          mine = (await store.getJob(event.jobId))?.owner === owner;
          owned.set(event.jobId, mine);
        }
        return mine;
      };
      const lastHeader = request.headers['last-event-id'];
      const after =
        request.query.after ?? (typeof lastHeader === 'string' ? Number(lastHeader) : undefined);
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      // Sent at once, so a client knows it is connected before the first event.
      raw.write(': connected\n\n');
      let lastSent = after ?? 0;
      let chain = Promise.resolve();
      // Events go out in id order; the ownership check may wait on the store, so they queue.
      const send = (event: Event): void => {
        chain = chain
          .then(async () => {
            if (event.id <= lastSent) return;
            if (jobId !== undefined && event.jobId !== jobId) return;
            if (!(await visible(event))) return;
            lastSent = event.id;
            raw.write(`id: ${event.id}\nevent: ${event.kind}\ndata: ${JSON.stringify(event)}\n\n`);
          })
          .catch(() => undefined);
      };
      const queued: Event[] = [];
      let replaying = true;
      const unsubscribe = store.subscribe((events) => {
        for (const e of events)
          if (replaying) queued.push(e);
          else send(e);
      });
      if (after !== undefined)
        for (const e of await store.listEvents({
          ...(jobId === undefined ? {} : { jobId }),
          afterId: after,
        }))
          send(e);
      replaying = false;
      for (const e of queued) send(e);
      const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), 15_000);
      request.raw.on('close', () => {
        clearInterval(keepAlive);
        unsubscribe();
      });
    },
  );
}
