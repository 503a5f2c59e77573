import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CubeError } from '../../core/index.ts';
import type { Job, ProgressSample } from '../model/index.ts';
import type { StateStore } from '../store/index.ts';
import { maySeeJob, ownerScope } from './access.ts';
import {
  apiSchemaRegistry,
  errorBody,
  jsonResponse,
  routeSchema,
  type ApiTypeProvider,
} from './api-schemas.ts';

/** Where `npm run build:web` puts the dashboard's production bundle. */
export const defaultWebRoot = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

/** One point of a job's curve: every rank's report of one step of one attempt, combined. */
export const SeriesPointSchema = z.strictObject({
  attempt: z.int().min(0),
  step: z.int().min(0),
  /** Epoch ms of the newest report of this step. */
  at: z.int(),
  /** Mean over the ranks that reported a loss, or null when none did. */
  loss: z.number().nullable(),
  /** Sum over the ranks that reported a throughput (the job's tokens/s), or null. */
  tokensPerS: z.number().nullable(),
  /** How many ranks reported this step. */
  ranks: z.int().min(1),
});
apiSchemaRegistry.add(SeriesPointSchema, {
  id: 'SeriesPoint',
  description: 'One step of one attempt of a job, combined over ranks.',
});
export type SeriesPoint = Readonly<z.output<typeof SeriesPointSchema>>;

/** A job's curve (`GET /jobs/{id}/series`). */
export const JobSeriesSchema = z.strictObject({
  jobId: z.string(),
  attempt: z.int().min(0),
  points: z.array(SeriesPointSchema),
});
export type JobSeries = z.output<typeof JobSeriesSchema>;

/** One job's newest point. */
export const LatestPointSchema = SeriesPointSchema.extend({ jobId: z.string() });
apiSchemaRegistry.add(LatestPointSchema, {
  id: 'LatestPoint',
  description: "A job's newest point (its current attempt's highest step).",
});

export const LatestProgressSchema = z.strictObject({ latest: z.array(LatestPointSchema) });
export type LatestProgress = z.output<typeof LatestProgressSchema>;

/**
 * Combines progress samples into one point per (attempt, step), in (attempt, step) order. The
 * loss is the mean over ranks (data-parallel ranks each see their own batch), the throughput
 * the sum (each rank reports its own tokens/s).
 */
export function seriesOf(samples: readonly ProgressSample[]): SeriesPoint[] {
  const byKey = new Map<
    string,
    {
      attempt: number;
      step: number;
      at: number;
      lossSum: number;
      losses: number;
      tps: number;
      tpsN: number;
      ranks: Set<number>;
    }
  >();
  for (const s of samples) {
    const key = `${s.attempt}:${s.step}`;
    let p = byKey.get(key);
    if (p === undefined) {
      p = {
        attempt: s.attempt,
        step: s.step,
        at: s.at,
        lossSum: 0,
        losses: 0,
        tps: 0,
        tpsN: 0,
        ranks: new Set(),
      };
      byKey.set(key, p);
    }
    // A rank may report the same step twice (the agent's last report before an exit): count
    // each rank once, with its newest values.
    if (p.ranks.has(s.rank)) continue;
    p.ranks.add(s.rank);
    p.at = Math.max(p.at, s.at);
    if (s.loss !== null && Number.isFinite(s.loss)) {
      p.lossSum += s.loss;
      p.losses += 1;
    }
    if (s.tokensPerS !== null) {
      p.tps += s.tokensPerS;
      p.tpsN += 1;
    }
  }
  return [...byKey.values()]
    .sort((a, b) => a.attempt - b.attempt || a.step - b.step)
    .map((p) => ({
      attempt: p.attempt,
      step: p.step,
      at: p.at,
      loss: p.losses === 0 ? null : p.lossSum / p.losses,
      tokensPerS: p.tpsN === 0 ? null : p.tps,
      ranks: p.ranks.size,
    }));
}

/**
 * The points of a job's curve after (`attempt`, `step`): the rest of that attempt and every
 * later attempt. The newest step of the newest attempt may still be missing ranks; a client
 * following the curve asks again from the step before it.
 */
async function seriesAfter(
  store: StateStore,
  job: Job,
  cursor: { attempt: number; step: number } | null,
): Promise<SeriesPoint[]> {
  const samples: ProgressSample[] = [];
  const first = cursor?.attempt ?? 0;
  for (let attempt = first; attempt <= job.attempt; attempt += 1)
    samples.push(
      ...(await store.listProgress(job.id, {
        attempt,
        ...(cursor !== null && attempt === cursor.attempt ? { afterStep: cursor.step } : {}),
        limit: 10_000_000,
      })),
    );
  return seriesOf(samples);
}

/** Each node's last sign of life and the silences it is judged by (`Orchestrator.liveness`). */
export const NodeLivenessSchema = z.strictObject({
  /** The control plane's clock (epoch ms), for clients whose clock differs. */
  now: z.int(),
  /** Silence after which a node is suspect (2.5 heartbeat intervals). */
  suspectAfterMs: z.number().min(0),
  nodes: z.array(
    z.strictObject({
      nodeId: z.string(),
      /** Epoch ms of its newest heartbeat as the control plane saw it (in memory). */
      lastSeenAt: z.int(),
      /** Silence after which it is marked `down`. */
      timeoutMs: z.number().min(0),
    }),
  ),
});
apiSchemaRegistry.add(NodeLivenessSchema, {
  id: 'NodeLiveness',
  description:
    "Each node's newest heartbeat as the failure detector saw it, and the silences it judges nodes by.",
});
export type NodeLiveness = z.output<typeof NodeLivenessSchema>;

export interface WebRoutesOptions {
  readonly store: StateStore;
  /** The heartbeats as the failure detector sees them; without it, no `/api/v1/heartbeats`. */
  readonly liveness?: () => Promise<NodeLiveness>;
  /** The built dashboard (`index.html` and `assets/`); default `web/dist` of this checkout. */
  readonly webRoot?: string;
}

const idParams = z.object({ id: z.string().min(1).max(64) });

/**
 * The dashboard: its static bundle at `/` (any other path that is not the API gets
 * `index.html`, so the single-page app's own routes survive a reload), and the read-only
 * endpoints its views need that the rest of the API lacks: a job's curve combined per step
 * (`GET /api/v1/jobs/{id}/series`), every job's latest point (`GET /api/v1/progress/latest`)
 * and the nodes' heartbeats as the failure detector sees them (`GET /api/v1/heartbeats`).
 */
export async function registerWebRoutes(
  app: FastifyInstance,
  options: WebRoutesOptions,
): Promise<void> {
  const { store } = options;
  const api = app.withTypeProvider<ApiTypeProvider>();

  async function getJob(id: string): Promise<Job> {
    const job = await store.getJob(id);
    if (job === null)
      throw new CubeError('UNKNOWN_ID', `no job "${id}"`, { where: { field: 'id' } });
    return job;
  }

  api.get(
    '/api/v1/jobs/:id/series',
    {
      schema: routeSchema(
        { role: 'viewer' },
        {
          operationId: 'getJobSeries',
          summary: "A job's loss and throughput per step",
          params: idParams,
          querystring: z.object({
            attempt: z.coerce.number().int().min(0).optional(),
            after: z.coerce.number().int().min(0).optional(),
          }),
          tags: ['jobs'],
          description:
            "The job's loss and throughput per step: one point per (attempt, step), the loss averaged and tokens/s summed over ranks. With `attempt` and `after` (together), only points after that step of that attempt.",
          response: { 200: jsonResponse(JobSeriesSchema, "The job's points.") },
          errors: [404],
        },
      ),
      config: { access: { role: 'viewer' } },
    },
    async (request) => {
      const job = await getJob(request.params.id);
      if (!maySeeJob(request.principal, job))
        throw new CubeError('UNKNOWN_ID', `no job "${job.id}"`, { where: { field: 'id' } });
      const { attempt, after } = request.query;
      if ((attempt === undefined) !== (after === undefined))
        throw new CubeError('INVALID_VALUE', '`attempt` and `after` go together', {
          where: { field: attempt === undefined ? 'attempt' : 'after' },
        });
      const cursor = attempt === undefined || after === undefined ? null : { attempt, step: after };
      return { jobId: job.id, attempt: job.attempt, points: await seriesAfter(store, job, cursor) };
    },
  );

  // The newest step seen per job and attempt, so each poll of the job list reads only the
  // samples from about there on, not the whole history of every job.
  const newestStep = new Map<string, { attempt: number; step: number }>();

  /** A job's newest complete point of its current attempt, or null before any progress. */
  async function latestPoint(job: Job): Promise<SeriesPoint | null> {
    const known = newestStep.get(job.id);
    const from = known !== undefined && known.attempt === job.attempt ? known.step - 2 : -1;
    const samples = await store.listProgress(job.id, {
      attempt: job.attempt,
      ...(from >= 0 ? { afterStep: from } : {}),
      limit: 10_000_000,
    });
    if (samples.length === 0) return null;
    const top = samples.reduce((m, s) => Math.max(m, s.step), 0);
    newestStep.set(job.id, { attempt: job.attempt, step: top });
    // The newest step may be half-reported; the one before it is complete when it exists.
    const points = seriesOf(samples.filter((s) => s.step >= top - 1));
    const full = points.at(-1);
    const previous = points.at(-2);
    return full !== undefined && previous !== undefined && previous.ranks > full.ranks
      ? previous
      : (full ?? null);
  }

  api.get(
    '/api/v1/progress/latest',
    {
      schema: routeSchema(
        { role: 'viewer' },
        {
          operationId: 'listLatestProgress',
          summary: "Every job's newest point",
          tags: ['jobs'],
          description:
            "Each job's newest point (its current attempt's highest step, combined over ranks), for job lists.",
          response: {
            200: jsonResponse(LatestProgressSchema, 'One point per job that has progress.'),
          },
        },
      ),
      config: { access: { role: 'viewer' } },
    },
    async (request) => {
      const latest: (SeriesPoint & { jobId: string })[] = [];
      const owner = ownerScope(request.principal);
      for (const job of await store.listJobs()) {
        if (owner !== null && job.owner !== owner) continue;
        const point = await latestPoint(job);
        if (point !== null) latest.push({ jobId: job.id, ...point });
      }
      return { latest };
    },
  );

  const { liveness } = options;
  if (liveness !== undefined)
    api.get(
      '/api/v1/heartbeats',
      {
        schema: routeSchema(
          { role: 'viewer' },
          {
            operationId: 'getHeartbeats',
            summary: "Each node's newest heartbeat as the failure detector saw it",
            tags: ['nodes'],
            description:
              "Each node's newest heartbeat as the control plane saw it (the stored `lastHeartbeatAt` of `GET /nodes` is written only every 10 s), with the silences it judges nodes by: suspect after `suspectAfterMs`, `down` after the node's `timeoutMs`.",
            response: { 200: jsonResponse(NodeLivenessSchema, 'The heartbeats.') },
          },
        ),
        config: { access: { role: 'viewer' } },
      },
      async () => liveness(),
    );

  const root = options.webRoot ?? defaultWebRoot;
  const built = (): boolean => existsSync(`${root}/index.html`);
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    // Our own route (below) serves the files, so that it can declare its access rule.
    serve: false,
    // Our own cache-control (below), not @fastify/static's default.
    cacheControl: false,
    // Hashed asset names change with their content; index.html must always be revalidated.
    setHeaders: (res, path) => {
      res.setHeader(
        'cache-control',
        path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    },
  });

  // The dashboard's files are public. Looked up per request, so a rebuild is served without a
  // restart; @fastify/send keeps the path inside `root`, and a missing file is a 404 below.
  // The handler returns nothing: a returned reply is a thenable that Fastify waits on with
  // end-of-stream listeners, and a missing file's fall-through to the not-found handler (which
  // sends index.html) waited twice on one response (Node's MaxListenersExceededWarning).
  app.get('/*', { schema: { hide: true }, config: { access: 'public' } }, (request, reply) => {
    const path = (request.params as { '*'?: string })['*'] ?? '';
    if (path === '' || path.endsWith('/')) reply.callNotFound();
    else void reply.sendFile(path);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const isPage =
      request.method === 'GET' &&
      !path.startsWith('/api/') &&
      !path.startsWith('/assets/') &&
      path !== '/metrics';
    if (!isPage)
      return reply
        .status(404)
        .send(errorBody('UNKNOWN_ID', `no route ${request.method} ${path}`, { path }));
    if (!built())
      return reply
        .status(503)
        .type('text/plain')
        .send(
          `The dashboard is not built (no ${root}index.html). Run \`npm run build:web\` in the checkout, then reload.\n`,
        );
    return reply.header('cache-control', 'no-cache').sendFile('index.html');
  });
}
