import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CubeError } from '../../core/index.ts';
import {
  CheckpointLevelSchema,
  JobSchema,
  JobSpecSchema,
  parseJobSpec,
  validateJobSpec,
  type Job,
} from '../model/index.ts';
import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import type { StateStore } from '../store/index.ts';
import { maySeeJob, ownerScope, requestToken, type Principal } from './access.ts';
import {
  apiSchemaRegistry,
  EventResponseSchema,
  JobResponseSchema,
  jsonResponse,
  ProgressSampleResponseSchema,
  routeSchema,
  type ApiTypeProvider,
} from './api-schemas.ts';
import { maxLogReadBytes, type RankLogs, rankLogPath } from './rank-logs.ts';

/** The `{id}` of a job route. */
export const jobIdParams = z.object({ id: z.string().min(1).max(64) });

/**
 * `POST /jobs`: a job spec as JSON (docs/job-spec.md), or `{yaml}` holding one as YAML text (as
 * an `application/yaml` body is taken).
 */
export const JobSubmitBodySchema = z.union([
  JobSpecSchema,
  z.strictObject({ yaml: z.string().describe('a job spec as YAML text') }),
]);

export const JobListSchema = z.strictObject({ jobs: z.array(JobResponseSchema) });
export type JobList = z.output<typeof JobListSchema>;

/** A checkpoint of a job committed at a step and level (`at`: epoch ms). */
export const CheckpointEntrySchema = z.strictObject({
  step: z.int().min(0),
  level: CheckpointLevelSchema,
  at: z.int(),
});
apiSchemaRegistry.add(CheckpointEntrySchema, {
  id: 'CheckpointEntry',
  description: 'A checkpoint of a job committed at a step and level.',
});

/** A job with its committed checkpoints and its newest progress report. */
export const JobDetailSchema = JobSchema.extend({
  checkpoints: z.array(CheckpointEntrySchema),
  lastProgress: ProgressSampleResponseSchema.nullable(),
});
apiSchemaRegistry.add(JobDetailSchema, {
  id: 'JobDetail',
  description: 'A job with its committed checkpoints and its newest progress report.',
});
export type JobDetail = z.output<typeof JobDetailSchema>;

export const EventListSchema = z.strictObject({ events: z.array(EventResponseSchema) });
export type EventList = z.output<typeof EventListSchema>;

export const ProgressListSchema = z.strictObject({
  progress: z.array(ProgressSampleResponseSchema),
});
export type ProgressList = z.output<typeof ProgressListSchema>;

export const JobLogsQuerySchema = z.object({
  rank: z.coerce.number().int().min(0).default(0),
  attempt: z.coerce.number().int().min(0).optional(),
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(maxLogReadBytes).default(maxLogReadBytes),
});

export interface JobRoutesOptions {
  readonly store: StateStore;
  readonly orchestrator: Orchestrator;
  readonly rankLogs: RankLogs;
  /** Where rank logs are kept: `<dataDir>/logs/<job>/<attempt>/rank-R.log`. */
  readonly dataDir: string;
}

/**
 * The job, when it exists and the caller may see it (a `user` sees only its own jobs); another
 * user's job is reported as absent, so a user learns nothing of others' jobs.
 */
export async function visibleJob(
  store: StateStore,
  id: string,
  principal: Principal,
): Promise<Job> {
  const job = await store.getJob(id);
  if (job === null || !maySeeJob(principal, job))
    throw new CubeError('UNKNOWN_ID', `no job "${id}"`, { where: { field: 'id' } });
  return job;
}

/** The users' job routes: submit, list, show, cancel, and a job's events, progress and logs. */
export function registerJobRoutes(app: FastifyInstance, options: JobRoutesOptions): void {
  const { store, orchestrator, rankLogs, dataDir } = options;
  const api = app.withTypeProvider<ApiTypeProvider>();
  const viewer = { access: { role: 'viewer' } } as const;
  const user = { access: { role: 'user' } } as const;

  api.post(
    '/api/v1/jobs',
    {
      // The body's schema is for the OpenAPI document (clients, fuzzers) only: the handler
      // validates it itself (validateJobSpec, parseJobSpec), whose errors name the field, say
      // what is near a misspelled key and point into a YAML text by line, so Fastify's own
      // validation is skipped here.
      schema: routeSchema(user.access, {
        operationId: 'submitJob',
        summary: 'Submit a job',
        description:
          'A job spec as JSON, `{yaml}` holding one as YAML text, or an `application/yaml` body. The job is queued and scheduled at once.',
        tags: ['jobs'],
        body: JobSubmitBodySchema,
        response: { 201: jsonResponse(JobResponseSchema, 'The job, queued.') },
        errors: [422, 507],
      }),
      validatorCompiler: () => (data: unknown) => ({ value: data }),
      config: user,
    },
    async (request, reply) => {
      const body: unknown = request.body;
      const spec =
        typeof body === 'object' && body !== null && 'yaml' in body && typeof body.yaml === 'string'
          ? parseJobSpec(body.yaml, { format: 'yaml' })
          : validateJobSpec(body);
      const job = await store.createJob(spec, { owner: requestToken(request).id });
      // Schedule at once, but after the reply is out: the pass can take a while for a big gang.
      setImmediate(() => void orchestrator.tick());
      return reply.status(201).send(job);
    },
  );

  api.get(
    '/api/v1/jobs',
    {
      schema: routeSchema(viewer.access, {
        operationId: 'listJobs',
        summary: 'List jobs',
        description: 'Every job the caller may see (a `user` token sees the jobs it submitted).',
        tags: ['jobs'],
        response: { 200: jsonResponse(JobListSchema, 'The jobs, oldest first.') },
      }),
      config: viewer,
    },
    async (request) => {
      const owner = ownerScope(request.principal);
      const jobs = await store.listJobs();
      return { jobs: owner === null ? jobs : jobs.filter((j) => j.owner === owner) };
    },
  );

  api.get(
    '/api/v1/jobs/:id',
    {
      schema: routeSchema(viewer.access, {
        operationId: 'getJob',
        summary: 'Show a job',
        tags: ['jobs'],
        params: jobIdParams,
        response: {
          200: jsonResponse(JobDetailSchema, 'The job, its checkpoints and newest progress.'),
        },
        errors: [404],
      }),
      config: viewer,
    },
    async (request) => {
      const job = await visibleJob(store, request.params.id, request.principal);
      const checkpoints = await store.listCheckpoints(job.id);
      const progress = await store.listProgress(job.id, { limit: 1_000_000 });
      const last = progress.at(-1) ?? null;
      return { ...job, checkpoints, lastProgress: last };
    },
  );

  api.post(
    '/api/v1/jobs/:id/cancel',
    {
      schema: routeSchema(user.access, {
        operationId: 'cancelJob',
        summary: 'Cancel a job',
        description:
          'Stops its ranks and ends it `cancelled`; a job that has already ended is answered as it is.',
        tags: ['jobs'],
        params: jobIdParams,
        response: { 200: jsonResponse(JobResponseSchema, 'The job after the cancel.') },
        errors: [404],
      }),
      config: user,
    },
    async (request) => {
      await visibleJob(store, request.params.id, request.principal);
      return orchestrator.cancel(request.params.id);
    },
  );

  api.get(
    '/api/v1/jobs/:id/events',
    {
      schema: routeSchema(viewer.access, {
        operationId: 'listJobEvents',
        summary: "List a job's events",
        tags: ['jobs'],
        params: jobIdParams,
        querystring: z.object({
          after: z.coerce
            .number()
            .int()
            .min(0)
            .optional()
            .describe('only events with a greater id'),
        }),
        response: { 200: jsonResponse(EventListSchema, "The job's events in id order.") },
        errors: [404],
      }),
      config: viewer,
    },
    async (request) => {
      await visibleJob(store, request.params.id, request.principal);
      return {
        events: await store.listEvents({
          jobId: request.params.id,
          ...(request.query.after === undefined ? {} : { afterId: request.query.after }),
        }),
      };
    },
  );

  api.get(
    '/api/v1/jobs/:id/progress',
    {
      schema: routeSchema(viewer.access, {
        operationId: 'listJobProgress',
        summary: "List a job's progress reports",
        tags: ['jobs'],
        params: jobIdParams,
        querystring: z.object({
          rank: z.coerce.number().int().min(0).optional().describe('only this rank'),
        }),
        response: { 200: jsonResponse(ProgressListSchema, 'Every rank report, oldest first.') },
        errors: [404],
      }),
      config: viewer,
    },
    async (request) => {
      await visibleJob(store, request.params.id, request.principal);
      return {
        progress: await store.listProgress(request.params.id, {
          ...(request.query.rank === undefined ? {} : { rank: request.query.rank }),
          limit: 1_000_000,
        }),
      };
    },
  );

  api.get(
    '/api/v1/jobs/:id/logs',
    {
      schema: routeSchema(viewer.access, {
        operationId: 'getJobLogs',
        summary: 'Read a rank log',
        tags: ['jobs'],
        params: jobIdParams,
        querystring: JobLogsQuerySchema,
        description:
          'At most `limit` bytes (default and largest 1 MiB) of a rank log from `offset` (over everything the rank wrote; bytes before `x-cube-log-start` were rotated out). Headers: `x-cube-log-size` (everything written so far), `x-cube-log-start`, `x-cube-log-offset` (where this reply starts), `x-cube-log-next-offset`, `x-cube-attempt`.',
        response: {
          200: {
            description: 'The bytes of the log in that range, as text.',
            content: { 'text/plain': { schema: z.string() } },
          },
        },
        errors: [404],
      }),
      config: viewer,
    },
    async (request, reply) => {
      const job = await visibleJob(store, request.params.id, request.principal);
      const attempt = request.query.attempt ?? job.attempt;
      const path = rankLogPath(dataDir, job.id, attempt, request.query.rank);
      // Only the asked range is read: a big log never sits in memory whole.
      const range = await rankLogs.read(path, {
        offset: request.query.offset,
        limit: request.query.limit,
      });
      return (
        reply
          .header('x-cube-log-size', String(range.size))
          .header('x-cube-log-start', String(range.start))
          .header('x-cube-log-offset', String(range.offset))
          .header('x-cube-log-next-offset', String(range.nextOffset))
          .header('x-cube-attempt', String(attempt))
          .type('text/plain; charset=utf-8')
          // A Buffer goes out as it is (Fastify serializes only objects); the document says text.
          .send(range.bytes as unknown as string)
      );
    },
  );
}
