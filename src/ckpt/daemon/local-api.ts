import { Readable } from 'node:stream';
import { chmod, rm } from 'node:fs/promises';
import { fastify, type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CubeError, formatIssuePath } from '../../core/index.ts';
import { jobIdSchema, levels, shardRecordSchema } from '../schemas.ts';
import { slotFile } from '../layout.ts';
import { pruneRequestSchema } from './prune.ts';
import type { CheckpointDaemon } from './checkpoint-daemon.ts';

const jobParams = z.object({ job: jobIdSchema });
const rankParams = jobParams.extend({ rank: z.coerce.number().int().min(0) });
const slotParams = rankParams.extend({ slot: z.coerce.number().int().min(0).max(15) });
const shardParams = rankParams.extend({ step: z.coerce.number().int().min(0) });
const keepSchema = z.partialRecord(z.enum(levels), z.int().min(1));
const registerBody = z.strictObject({
  worldSize: z.int().min(1),
  localRanks: z.array(z.int().min(0)).min(1),
  l3Every: z.int().min(1).optional(),
  everySteps: z.int().min(1).optional(),
  keep: keepSchema.optional(),
});
const sourcesQuery = z.object({ rank: z.coerce.number().int().min(0) });
const shardQuery = z.object({ level: z.enum(levels), node: z.string().min(1) });

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue === undefined ? '' : formatIssuePath(issue.path);
  throw new CubeError(
    'INVALID_VALUE',
    `${what}: ${path === '' ? '' : `${path}: `}${issue?.message ?? 'invalid'}`,
    {
      where: { path },
    },
  );
}

/**
 * The daemon's local HTTP API over a Unix socket (docs/checkpoint-format.md, "Daemon local
 * API"): what the training-side client calls to register, lease slots, report saved shards,
 * and find and fetch shards to restore.
 */
export async function startLocalApi(
  daemon: CheckpointDaemon,
  socketPath: string,
): Promise<FastifyInstance> {
  const app = buildLocalApi(daemon);
  await rm(socketPath, { force: true });
  await app.listen({ path: socketPath });
  // Only this user's processes (its ranks) may connect; the directory is 0700 as well.
  await chmod(socketPath, 0o600);
  return app;
}

/**
 * A Fastify app for a node-local Unix socket API, not yet listening: errors answer
 * `{error: CubeError JSON}` with the error's HTTP status (Fastify's own 4xx, such as a bad body,
 * as INVALID_VALUE). The daemon's local API and the node agent's rank socket both use it.
 */
export function createLocalApp(): FastifyInstance {
  const app = fastify({ logger: false });
  app.setErrorHandler((error, _request, reply) => {
    const status = (error as { statusCode?: number }).statusCode;
    const e =
      error instanceof CubeError
        ? error
        : new CubeError(
            status !== undefined && status < 500 ? 'INVALID_VALUE' : 'INTERNAL',
            error instanceof Error ? error.message : String(error),
          );
    void reply.status(e.httpStatus).send({ error: e.toJSON() });
  });
  return app;
}

/** The local API's Fastify app with the daemon's routes, not yet listening. */
export function buildLocalApi(daemon: CheckpointDaemon): FastifyInstance {
  const app = createLocalApp();

  app.post('/v1/jobs/:job/ranks/:rank/register', (request, reply) => {
    const { job, rank } = parse(rankParams, request.params, 'register');
    const body = parse(registerBody, request.body, 'register body');
    daemon.register(job, rank, {
      worldSize: body.worldSize,
      localRanks: body.localRanks,
      ...(body.l3Every === undefined ? {} : { l3Every: body.l3Every }),
      ...(body.everySteps === undefined ? {} : { everySteps: body.everySteps }),
      ...(body.keep === undefined ? {} : { keep: body.keep }),
    });
    void reply.send({ ok: true, node: daemon.node });
  });

  app.post('/v1/jobs/:job/ranks/:rank/slots/:slot/lease', async (request) => {
    const { job, rank, slot } = parse(slotParams, request.params, 'lease');
    await daemon.leaseSlot(job, rank, slotFile(rank, slot));
    return { ok: true };
  });

  app.post('/v1/jobs/:job/saved', async (request, reply) => {
    const { job } = parse(jobParams, request.params, 'saved');
    const record = parse(shardRecordSchema, request.body, 'shard record');
    if (record.job !== job)
      throw new CubeError('INVALID_VALUE', `record of job ${record.job} posted to job ${job}`, {
        where: { field: 'job' },
      });
    await daemon.saved(record);
    return reply.status(202).send({ ok: true });
  });

  // H3 (timelines): after a restore, remove abandoned steps' replicas here and on every peer.
  app.post('/v1/jobs/:job/prune', async (request) => {
    const { job } = parse(jobParams, request.params, 'prune');
    const body = parse(pruneRequestSchema, request.body, 'prune body');
    return daemon.prune(job, body);
  });

  app.get('/v1/jobs/:job/sources', async (request) => {
    const { job } = parse(jobParams, request.params, 'sources');
    const { rank } = parse(sourcesQuery, request.query, 'sources query');
    return { steps: await daemon.sources(job, rank) };
  });

  app.get('/v1/jobs/:job/steps/:step/ranks/:rank/record', async (request) => {
    const { job, step, rank } = parse(shardParams, request.params, 'record');
    const { level, node } = parse(shardQuery, request.query, 'record query');
    return daemon.record(job, step, rank, level, node);
  });

  app.get('/v1/jobs/:job/steps/:step/ranks/:rank/shard', async (request, reply) => {
    const { job, step, rank } = parse(shardParams, request.params, 'shard');
    const { node } = parse(shardQuery, request.query, 'shard query');
    const shard = await daemon.fetchShard(job, step, rank, node);
    void reply.header('content-type', 'application/octet-stream');
    if (shard.bytes >= 0) void reply.header('content-length', String(shard.bytes));
    if (shard.xxh3 !== '') void reply.header('x-cube-xxh3', shard.xxh3);
    return reply.send(Readable.from(shard.payload));
  });

  app.get('/v1/status', () => ({ node: daemon.node, peer: daemon.address, jobs: daemon.status() }));

  // What the node agent's /metrics serves for this daemon (counters since it started).
  app.get('/v1/counters', () => daemon.counters());

  return app;
}
