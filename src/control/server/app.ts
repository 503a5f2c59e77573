import swagger, { type SwaggerTransformObject } from '@fastify/swagger';
import { fastify, type FastifyInstance } from 'fastify';
import {
  createJsonSchemaTransform,
  createJsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import { CubeError } from '../../core/index.ts';
import type { StateStore } from '../store/index.ts';
import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import { installAccessControl } from './access.ts';
import { registerAgentRoutes } from './agent-routes.ts';
import { apiSchemaRegistry, errorBody, securitySchemes } from './api-schemas.ts';
import { registerEventRoutes } from './event-routes.ts';
import { registerJobRoutes } from './job-routes.ts';
import type { ControlMetrics } from './metrics.ts';
import { registerNodeRoutes } from './node-routes.ts';
import { NodeScope } from './node-scope.ts';
import { registerPlanRoutes } from './plan-routes.ts';
import { RankLogs } from './rank-logs.ts';
import { registerSimRoutes } from './sim-routes.ts';
import { StreamTickets } from './stream-tickets.ts';
import { registerSystemRoutes } from './system-routes.ts';
import { registerTokenRoutes } from './token-routes.ts';
import { registerWebRoutes } from './web-routes.ts';

export interface ControlAppOptions {
  readonly store: StateStore;
  readonly orchestrator: Orchestrator;
  readonly metrics: ControlMetrics;
  /** Where rank logs are kept: `<dataDir>/logs/<job>/<attempt>/rank-R.log`. */
  readonly dataDir: string;
  readonly heartbeatIntervalMs?: number;
  /** Serve `/metrics` without a token (`cube server --metrics-public`). */
  readonly metricsPublic?: boolean;
  /** Accept `POST /nodes/:id/faults` (`cube server --allow-fault-injection`); off by default. */
  readonly allowFaultInjection?: boolean;
  /** The cap of one rank log on the server, current and rotated file together (default 64 MiB). */
  readonly rankLogMaxBytes?: number;
  /** HTTPS: the PEM certificate chain and key (`cube server --tls-cert/--tls-key`). */
  readonly https?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

export { rankLogPath } from './rank-logs.ts';

/** The tags of the document, one per resource, in the order a reader meets them. */
const tags = [
  {
    name: 'jobs',
    description: 'Submit, list, show and cancel jobs; their events, progress and logs.',
  },
  { name: 'nodes', description: 'The nodes of the cluster; cordon and uncordon.' },
  { name: 'events', description: 'The durable event log, paged or live.' },
  { name: 'tokens', description: 'API tokens (admin).' },
  { name: 'planner', description: 'The parallelism planner.' },
  { name: 'simulator', description: 'The reliability simulator.' },
  { name: 'agents', description: "The node agents' routes, under each node's own credential." },
  { name: 'system', description: 'Liveness, readiness and this document.' },
];

/**
 * The document without the components nothing refers to: the Zod transform writes an `Input`
 * variant of every named schema, used or not, and a generated client would carry them all.
 */
function withoutUnusedSchemas(transform: SwaggerTransformObject): SwaggerTransformObject {
  return (input) => {
    const document = transform(input) as { components?: { schemas?: Record<string, unknown> } };
    const schemas = document.components?.schemas;
    if (schemas === undefined) return document as ReturnType<SwaggerTransformObject>;
    for (let removed = true; removed;) {
      removed = false;
      const text = JSON.stringify({
        ...document,
        components: { ...document.components, schemas: {} },
      });
      const used = (name: string): boolean =>
        text.includes(`"#/components/schemas/${name}"`) ||
        Object.entries(schemas).some(
          ([other, schema]) =>
            other !== name && JSON.stringify(schema).includes(`"#/components/schemas/${name}"`),
        );
      for (const name of Object.keys(schemas))
        if (!used(name)) {
          delete schemas[name];
          removed = true;
        }
    }
    return document as ReturnType<SwaggerTransformObject>;
  };
}

/** Fastify's own failures (a body that is not JSON, too large, an unknown media type). */
interface FastifyFailure {
  readonly validation?: readonly {
    readonly message?: string;
    readonly instancePath?: string;
    readonly params?: { readonly issue?: { readonly path?: readonly unknown[] } };
  }[];
  readonly statusCode?: number;
  readonly message?: string;
}

/**
 * The control plane's HTTP API (docs/api.md, docs/control-protocol.md), composed of one module
 * per resource, each with its Zod schemas: jobs, nodes, agents, events and stream, tokens,
 * planner, simulator, the dashboard's routes and the process's own. Every answer, errors
 * included, is serialized with the schema its route declares for its status; errors are the
 * one `ErrorBody` with the CubeError's status.
 */
export async function buildControlApp(options: ControlAppOptions): Promise<FastifyInstance> {
  const { store, orchestrator, metrics, dataDir } = options;
  const app = fastify({
    logger: false,
    bodyLimit: 16 * 1024 * 1024,
    ...(options.https === undefined ? {} : { https: { ...options.https } }),
  });
  const tickets = new StreamTickets();
  const rankLogs = new RankLogs(
    options.rankLogMaxBytes === undefined ? {} : { maxBytes: options.rankLogMaxBytes },
  );
  installAccessControl(app, {
    store,
    tickets,
    ...(options.metricsPublic === undefined ? {} : { metricsPublic: options.metricsPublic }),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addContentTypeParser(
    ['application/yaml', 'text/yaml'],
    { parseAs: 'string' },
    (_req, body, done) => done(null, { yaml: body }),
  );
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Cube control plane',
        version: '1',
        description:
          'The REST API of the Cube control plane: jobs, nodes, events, tokens, the planner and the simulator for users; join, heartbeat, events and logs for node agents. See docs/api.md.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      servers: [{ url: '/', description: 'the control plane that serves this document' }],
      tags,
      components: { securitySchemes },
      security: [{ apiToken: [] }],
    },
    transform: createJsonSchemaTransform({ schemaRegistry: apiSchemaRegistry }),
    transformObject: withoutUnusedSchemas(
      createJsonSchemaTransformObject({ schemaRegistry: apiSchemaRegistry }),
    ),
  });

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof CubeError)
      return reply
        .status(error.httpStatus)
        .send(errorBody(error.code, error.message, error.where, error.hint));
    const e = error as FastifyFailure;
    if (e.validation !== undefined) {
      const first = e.validation[0];
      const path =
        (first?.params?.issue?.path ?? []).join('.') ||
        (first?.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
      return reply
        .status(400)
        .send(
          errorBody(
            'INVALID_VALUE',
            `${path === '' ? '' : `${path}: `}${first?.message ?? e.message ?? 'invalid request'}`,
            { path },
          ),
        );
    }
    const status = e.statusCode ?? 500;
    return reply
      .status(status)
      .send(errorBody(status < 500 ? 'INVALID_VALUE' : 'INTERNAL', e.message ?? String(error)));
  });

  app.get(
    '/metrics',
    { schema: { hide: true }, config: { access: 'metrics' } },
    async (_request, reply) => {
      const text = await metrics.registry.metrics();
      return reply.header('content-type', metrics.registry.contentType).send(text);
    },
  );
  registerSystemRoutes(app, { store });
  registerAgentRoutes(app, {
    store,
    orchestrator,
    metrics,
    scope: new NodeScope(store),
    rankLogs,
    dataDir,
    ...(options.heartbeatIntervalMs === undefined
      ? {}
      : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
  });
  registerJobRoutes(app, { store, orchestrator, rankLogs, dataDir });
  registerNodeRoutes(app, {
    store,
    orchestrator,
    ...(options.allowFaultInjection === undefined
      ? {}
      : { allowFaultInjection: options.allowFaultInjection }),
  });
  registerEventRoutes(app, { store, tickets });
  registerTokenRoutes(app, { store });
  registerSimRoutes(app, { compute: registerPlanRoutes(app) });
  await registerWebRoutes(app, { store, liveness: () => orchestrator.liveness() });
  return app;
}
