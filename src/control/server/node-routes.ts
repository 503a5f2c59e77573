import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CubeError } from '../../core/index.ts';
import type { Node } from '../model/index.ts';
import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import type { StateStore } from '../store/index.ts';
import {
  jsonResponse,
  NodeResponseSchema,
  routeSchema,
  type ApiTypeProvider,
} from './api-schemas.ts';

/** The `{id}` of a node route: a node id, or the name of a node that has not left. */
export const nodeIdParams = z.object({ id: z.string().min(1).max(64) });

export const NodeListSchema = z.strictObject({ nodes: z.array(NodeResponseSchema) });
export type NodeList = z.output<typeof NodeListSchema>;

export const FaultBodySchema = z.object({
  kind: z.enum(['kill-node', 'kill-rank', 'fail-probe']),
  jobId: z.string().optional(),
  rank: z.int().min(0).optional(),
});

export const FaultAcceptedSchema = z.strictObject({
  ok: z.literal(true),
  node: z.string(),
  fault: FaultBodySchema.shape.kind,
});

export interface NodeRoutesOptions {
  readonly store: StateStore;
  readonly orchestrator: Orchestrator;
  /** Accept `POST /nodes/:id/faults` (`cube server --allow-fault-injection`). */
  readonly allowFaultInjection?: boolean;
}

/** The users' node routes: list, cordon, uncordon, and fault injection for chaos tests. */
export function registerNodeRoutes(app: FastifyInstance, options: NodeRoutesOptions): void {
  const { store, orchestrator } = options;
  const api = app.withTypeProvider<ApiTypeProvider>();
  const viewer = { access: { role: 'viewer' } } as const;
  const admin = { access: { role: 'admin' } } as const;

  api.get(
    '/api/v1/nodes',
    {
      schema: routeSchema(viewer.access, {
        operationId: 'listNodes',
        summary: 'List nodes',
        tags: ['nodes'],
        response: { 200: jsonResponse(NodeListSchema, 'Every node, left ones included.') },
      }),
      config: viewer,
    },
    async () => ({ nodes: await store.listNodes() }),
  );

  async function getNode(id: string): Promise<Node> {
    const byId = await store.getNode(id);
    if (byId !== null) return byId;
    const byName = (await store.listNodes()).find((n) => n.name === id && n.state !== 'left');
    if (byName === undefined)
      throw new CubeError('UNKNOWN_ID', `no node "${id}"`, { where: { field: 'node' } });
    return byName;
  }

  api.post(
    '/api/v1/nodes/:id/cordon',
    {
      schema: routeSchema(admin.access, {
        operationId: 'cordonNode',
        summary: 'Cordon a node',
        description:
          'No new ranks go to a cordoned node; those running stay. Cordoning a cordoned node changes nothing.',
        tags: ['nodes'],
        params: nodeIdParams,
        response: { 200: jsonResponse(NodeResponseSchema, 'The node after it.') },
        errors: [404, 422],
      }),
      config: admin,
    },
    async (request) => {
      const node = await getNode(request.params.id);
      if (node.state === 'cordoned') return node;
      if (node.state !== 'ready')
        throw new CubeError(
          'INFEASIBLE',
          `node ${node.name} is ${node.state}; only a ready node can be cordoned`,
          { where: { node: node.name } },
        );
      return store.updateNode(node.id, { state: 'cordoned' }, [
        { kind: 'node-cordoned', nodeId: node.id, data: { by: 'user' } },
      ]);
    },
  );

  api.post(
    '/api/v1/nodes/:id/uncordon',
    {
      schema: routeSchema(admin.access, {
        operationId: 'uncordonNode',
        summary: 'Uncordon a node',
        description: 'A cordoned node becomes ready; any other node is answered as it is.',
        tags: ['nodes'],
        params: nodeIdParams,
        response: { 200: jsonResponse(NodeResponseSchema, 'The node after it.') },
        errors: [404],
      }),
      config: admin,
    },
    async (request) => {
      const node = await getNode(request.params.id);
      if (node.state !== 'cordoned') return node;
      return store.updateNode(node.id, { state: 'ready' }, [
        { kind: 'node-uncordoned', nodeId: node.id, data: { reason: 'by a user' } },
      ]);
    },
  );

  api.post(
    '/api/v1/nodes/:id/faults',
    {
      schema: routeSchema(admin.access, {
        operationId: 'injectNodeFault',
        summary: 'Inject a fault on a node',
        description:
          'For chaos tests: kills the node, a rank, or fails a probe. Refused (403) unless the server runs with `--allow-fault-injection`.',
        tags: ['nodes'],
        params: nodeIdParams,
        body: FaultBodySchema,
        response: { 202: jsonResponse(FaultAcceptedSchema, 'The fault is on its way.') },
        errors: [404],
      }),
      config: admin,
    },
    async (request, reply) => {
      if (options.allowFaultInjection !== true)
        throw new CubeError(
          'FORBIDDEN',
          'fault injection is off on this control plane; start it with --allow-fault-injection to allow it',
          { where: { field: '--allow-fault-injection' } },
        );
      const node = await getNode(request.params.id);
      orchestrator.injectFault(node.id, request.body.kind, {
        ...(request.body.jobId === undefined ? {} : { jobId: request.body.jobId }),
        ...(request.body.rank === undefined ? {} : { rank: request.body.rank }),
      });
      return reply
        .status(202)
        .send({ ok: true as const, node: node.name, fault: request.body.kind });
    },
  );
}
